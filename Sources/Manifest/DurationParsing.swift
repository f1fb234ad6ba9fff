/// Durations in manifests: an integer followed by `ms`, `s`, `m`, `h` or `d` (`500ms`, `2s`, `1m`, `7d`).
public enum DurationParser {
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, millis) in units where text.hasSuffix(suffix) {
            let digits = text.dropLast(suffix.count)
            // "ms" also ends with "s": only accept when what is left is all digits.
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(digits),
                  value <= Int64.max / millis / 1_000_000
            else { continue }
            return .milliseconds(value * millis)
        }
        return nil
    }

    /// The shortest exact manifest spelling of a duration.
    public static func format(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms % 86_400_000 == 0, ms != 0 { return "\(ms / 86_400_000)d" }
        if ms % 3_600_000 == 0, ms != 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0, ms != 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Duration {
    /// Whole milliseconds.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
