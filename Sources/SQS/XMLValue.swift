import Foundation

/// The text of the first `<tag>…</tag>` element in `xml`, with the five XML entities decoded.
///
/// Enough for the flat, attribute-free answers of STS and AWS's XML error bodies;
/// not a general XML parser.
func xmlValue(_ tag: String, in xml: String) -> String? {
    guard let open = xml.range(of: "<\(tag)>"),
        let close = xml.range(of: "</\(tag)>", range: open.upperBound..<xml.endIndex)
    else { return nil }
    return xml[open.upperBound..<close.lowerBound]
        .replacingOccurrences(of: "&lt;", with: "<")
        .replacingOccurrences(of: "&gt;", with: ">")
        .replacingOccurrences(of: "&quot;", with: "\"")
        .replacingOccurrences(of: "&apos;", with: "'")
        .replacingOccurrences(of: "&amp;", with: "&")
        .trimmingCharacters(in: .whitespacesAndNewlines)
}
