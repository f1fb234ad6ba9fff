import Foundation
import Logging
import NIOSSL
import Synchronization

/// The TLS context of one listener: loaded from its certificate and key files, and loaded again when either
/// changes (checked by `reloadIfChanged`, which the router calls every second). New connections get the context
/// loaded last; a load that fails keeps the one before. Errors name the files, never their contents.
final class TLSContextSource: Sendable {
    /// What identifies one version of a file: a new file moved over it, or one written in place, changes it.
    private struct Stamp: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var seconds: Int
        var nanoseconds: Int

        init?(_ path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            seconds = Int(info.st_mtim.tv_sec)
            nanoseconds = Int(info.st_mtim.tv_nsec)
        }
    }

    let files: TLSFiles
    private let state: Mutex<(context: NIOSSLContext, stamps: [Stamp?])>

    init(files: TLSFiles) throws {
        self.files = files
        let stamps = [Stamp(files.certificate), Stamp(files.key)]
        state = Mutex((try Self.load(files), stamps))
    }

    var context: NIOSSLContext { state.withLock { $0.context } }

    /// Loads the files again when they changed since the last load; returns whether a new context is in use.
    @discardableResult
    func reloadIfChanged(logger: Logger) -> Bool {
        let stamps = [Stamp(files.certificate), Stamp(files.key)]
        guard stamps != state.withLock({ $0.stamps }) else { return false }
        do {
            let context = try Self.load(files)
            state.withLock { $0 = (context, stamps) }
            logger.info("TLS certificate reloaded", metadata: ["certificate": "\(files.certificate)"])
            return true
        } catch {
            // Half-written files are common while a renewal runs: try again at the next change, keep serving.
            state.withLock { $0.stamps = stamps }
            logger.error("TLS files could not be loaded again; the previous certificate stays in use",
                         metadata: ["certificate": "\(files.certificate)", "key": "\(files.key)", "error": "\(error)"])
            return false
        }
    }

    private static func load(_ files: TLSFiles) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
        } catch {
            throw RouterError("cannot read the TLS certificate \(files.certificate): \(error)")
        }
        guard !chain.isEmpty else { throw RouterError("no certificate in \(files.certificate)") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.key, format: .pem)
        } catch {
            throw RouterError("cannot read the TLS key \(files.key): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // HTTP/1.1 only: a client offering h2 alone gets no protocol agreed and speaks HTTP/1.1 or leaves.
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RouterError("the TLS certificate \(files.certificate) and key \(files.key) do not make a usable pair: \(error)")
        }
    }
}
