/// An ordered JSON object written by hand (keys in insertion order, for readable output lines).
public struct JSONLine: Sendable {
    private var fields: [String] = []
    public init() {}

    public mutating func add(_ key: String, _ value: Int) { fields.append("\"\(key)\":\(value)") }
    public mutating func add(_ key: String, _ value: UInt64) { fields.append("\"\(key)\":\(value)") }
    public mutating func add(_ key: String, _ value: Bool) { fields.append("\"\(key)\":\(value)") }
    public mutating func add(_ key: String, _ value: Double, digits: Int = 3) {
        if value.isFinite {
            fields.append("\"\(key)\":\(formatFixed(value, digits: digits))")
        } else {
            fields.append("\"\(key)\":null")
        }
    }
    public mutating func add(_ key: String, _ value: String) { fields.append("\"\(key)\":\(quoteJSON(value))") }
    public mutating func addNull(_ key: String) { fields.append("\"\(key)\":null") }
    public mutating func add(_ key: String, raw: String) { fields.append("\"\(key)\":\(raw)") }

    public var text: String { "{" + fields.joined(separator: ",") + "}" }
}

public func quoteJSON(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// Fixed-point formatting without Foundation.
public func formatFixed(_ value: Double, digits: Int) -> String {
    guard value.isFinite else { return "nan" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let negative = value < 0
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    let frac = Int(scaled - Double(whole) * scale)
    var s = (negative && scaled != 0 ? "-" : "") + String(whole)
    if digits > 0 {
        let f = String(frac)
        s += "." + String(repeating: "0", count: digits - f.count) + f
    }
    return s
}
