/// Why a signature or a list of trusted keys could not be used.
public enum SignatureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The signature's bytes are not what their format says.
    case malformed(String)
    /// A valid format teal does not verify (RSA, security keys, certificates).
    case unsupported(String)
    /// A line of an allowed_signers file teal cannot read: file, line number, why.
    case allowedSigners(file: String, line: Int, String)
    /// The signature does not match the signed data, or its key does not match what it claims.
    case badSignature(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed signature: \(why)"
        case .unsupported(let why): why
        case .allowedSigners(let file, let line, let why): "\(file):\(line): \(why)"
        case .badSignature(let why): why
        }
    }
}
