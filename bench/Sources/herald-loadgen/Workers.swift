import Dispatch
import Foundation

/// Line-based pipes between the main load generator and its worker processes (the fd cap is
/// 20,000 per process, so 19,000+ clients need several processes).
final class LineReader: @unchecked Sendable {
    private let fd: Int32
    private var pending: [UInt8] = []
    private let queue = DispatchQueue(label: "herald-loadgen.line-reader")

    init(fd: Int32) { self.fd = fd }

    /// Reads one line (without the newline); nil at end of file. Blocking reads run on a
    /// dedicated dispatch queue, not on the cooperative pool.
    func readLine() async -> String? {
        await withCheckedContinuation { (cont: CheckedContinuation<String?, Never>) in
            queue.async {
                cont.resume(returning: self.blockingReadLine())
            }
        }
    }

    private func blockingReadLine() -> String? {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let nl = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if pending.isEmpty { return nil }
                let line = String(decoding: pending, as: UTF8.self)
                pending.removeAll()
                return line
            }
            pending.append(contentsOf: chunk[0..<n])
        }
    }
}

func writeLine(fd: Int32, _ line: String) {
    var bytes = Array((line + "\n").utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        off += n
    }
}

/// A worker process: this same executable with `--worker i/n`.
final class WorkerProcess: @unchecked Sendable {
    let index: Int
    let process: Process
    let toWorker: Pipe
    let fromWorker: Pipe
    let reader: LineReader

    init(index: Int, count: Int, arguments: [String]) throws {
        self.index = index
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments + ["--worker", "\(index)/\(count)"]
        toWorker = Pipe()
        fromWorker = Pipe()
        process.standardInput = toWorker
        process.standardOutput = fromWorker
        process.standardError = FileHandle.standardError
        try process.run()
        reader = LineReader(fd: fromWorker.fileHandleForReading.fileDescriptor)
    }

    func send(_ line: String) {
        writeLine(fd: toWorker.fileHandleForWriting.fileDescriptor, line)
    }

    /// Next line starting with `prefix` (other lines are ignored).
    func expect(_ prefix: String) async throws -> Substring {
        while let line = await reader.readLine() {
            if line.hasPrefix(prefix + " ") || line == prefix {
                return line.dropFirst(prefix.count).drop(while: { $0 == " " })
            }
        }
        throw LoadgenError.worker("worker \(index) ended before sending \(prefix)")
    }

    func waitForExit() {
        process.waitUntilExit()
    }

    func terminate() {
        if process.isRunning { process.terminate() }
    }
}
