import EngineIO
import Foundation
import NIOCore
import SocketIO

/// Times how long the Socket.IO decoder takes for one event at the largest size a client may
/// send (maxHTTPBufferSize, 1 MB by default): the work a client's event costs the event loop it
/// arrives on. Prints one line per payload shape: milliseconds per decode and MB/s.
///
///     swift run -c release decode-bench [ITERATIONS] [--dump DIR]
///
/// `--dump DIR` also writes each packet to DIR (one file per shape), for timing another parser
/// on the same bytes (`scripts/bench-decode` times Node's `JSON.parse`, what the reference's
/// parser calls).
@main
struct DecodeBench {
    static func main() throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        var dump: String?
        if let flag = arguments.firstIndex(of: "--dump"), flag + 1 < arguments.count {
            dump = arguments[flag + 1]
            arguments.removeSubrange(flag...(flag + 1))
        }
        let iterations = arguments.first.flatMap(Int.init) ?? 50
        for (name, packet) in payloads() {
            if let dump {
                try packet.write(toFile: "\(dump)/\(name.replacingOccurrences(of: " ", with: "-")).txt", atomically: true, encoding: .utf8)
            }
            var buffer = ByteBuffer(string: packet)
            buffer.moveReaderIndex(to: 0)
            var decoder = SocketIODecoder()
            // One decode to warm up, then the timed ones.
            _ = try! decoder.decode(.text(buffer))
            let clock = ContinuousClock()
            let elapsed = clock.measure {
                for _ in 0..<iterations { _ = try! decoder.decode(.text(buffer)) }
            }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let perDecode = seconds / Double(iterations)
            let megabytes = Double(packet.utf8.count) / 1_000_000
            let label = name.padding(toLength: 28, withPad: " ", startingAt: 0)
            print(
                "swift  \(label) "
                    + String(format: "%7.0f kB  %8.2f ms/decode  %7.1f MB/s", megabytes * 1000, perDecode * 1000, megabytes / perDecode))
        }
    }

    /// Events of about 1 MB in the shapes clients send: one long string, many small objects,
    /// many numbers, and text with escapes and non-ASCII characters.
    static func payloads() -> [(String, String)] {
        let size = 1_000_000
        let longString = #"2["upload",""# + String(repeating: "a", count: size - 16) + #""]"#
        var objects = #"2["rows",["#
        var index = 0
        while objects.utf8.count < size - 64 {
            if index > 0 { objects += "," }
            objects += #"{"id":\#(index),"name":"item \#(index)","price":\#(Double(index) / 4),"tags":["a","b"],"ok":true}"#
            index += 1
        }
        objects += "]]"
        var numbers = #"2["samples",["#
        index = 0
        while numbers.utf8.count < size - 32 {
            if index > 0 { numbers += "," }
            numbers += String(Double(index) * 1.25)
            index += 1
        }
        numbers += "]]"
        var text = #"2["text",""#
        while text.utf8.count < size - 32 { text += #"ünïcode ✓ \"quoted\" line\n"# }
        text += #""]"#
        return [("one 1 MB string", longString), ("small objects", objects), ("numbers", numbers), ("escapes and non-ASCII", text)]
    }
}
