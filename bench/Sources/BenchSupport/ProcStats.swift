#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU seconds (user + system) used by this process so far.
public func selfCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ tv: timeval) -> Double { Double(tv.tv_sec) + Double(tv.tv_usec) / 1_000_000 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak RSS of this process in KiB (ru_maxrss).
public func selfMaxRSSKiB() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss)
}

/// Reads a whole small file (procfs) into a String; nil when it cannot be read.
public func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16_384)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// One sample of another process: CPU seconds (utime + stime, and those of its waited-for
/// children) from /proc/PID/stat and resident memory from /proc/PID/status.
public struct ProcessSample: Sendable {
    public var cpuSeconds: Double
    public var rssKiB: Int
    public var threads: Int
    /// Seconds the process's threads were runnable but waiting for a CPU (sum of the second
    /// field of /proc/PID/task/*/schedstat). Grows when something else competes for the core.
    public var runQueueWaitSeconds: Double

    public static func read(pid: Int32) -> ProcessSample? {
        guard let stat = readSmallFile("/proc/\(pid)/stat"),
            let status = readSmallFile("/proc/\(pid)/status")
        else { return nil }
        // The command name (field 2) may contain spaces: fields are counted after the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        // rest[0] is field 3 (state); utime is field 14, stime 15 -> rest[11], rest[12].
        guard rest.count > 13, let utime = Double(rest[11]), let stime = Double(rest[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var rss = 0
        var threads = 0
        for line in status.split(separator: "\n") {
            if line.hasPrefix("VmRSS:") {
                rss = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
            } else if line.hasPrefix("Threads:") {
                threads = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "0") ?? 0
            }
        }
        return ProcessSample(
            cpuSeconds: (utime + stime) / ticks, rssKiB: rss, threads: threads,
            runQueueWaitSeconds: runQueueWait(pid: pid))
    }
}

/// Sum over the threads of `pid` of the time spent waiting on a run queue, in seconds.
public func runQueueWait(pid: Int32) -> Double {
    guard let dir = opendir("/proc/\(pid)/task") else { return 0 }
    defer { closedir(dir) }
    var total: Double = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        guard Int32(name) != nil, let text = readSmallFile("/proc/\(pid)/task/\(name)/schedstat") else { continue }
        let fields = text.split(separator: " ")
        if fields.count >= 2, let wait = Double(fields[1].trimmingPrefix(" ")) { total += wait / 1e9 }
    }
    return total
}

/// Finds the process listening on TCP `port` (IPv4 or IPv6) by matching the socket inode from
/// /proc/net/tcp{,6} against the descriptors in /proc/PID/fd. Returns nil when not found (or when
/// the process belongs to another user and its fds cannot be read).
public func findListeningPID(port: Int) -> Int32? {
    var inodes: Set<String> = []
    let portHex = String(port, radix: 16, uppercase: true)
    let padded = String(repeating: "0", count: max(0, 4 - portHex.count)) + portHex
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        guard let text = readSmallFile(table) else { continue }
        for line in text.split(separator: "\n").dropFirst() {
            let cols = line.split(separator: " ")
            guard cols.count > 9 else { continue }
            // cols[1] local address "IP:PORT", cols[3] state (0A = LISTEN), cols[9] inode.
            if cols[3] == "0A", cols[1].hasSuffix(":" + padded) {
                inodes.insert(String(cols[9]))
            }
        }
    }
    guard !inodes.isEmpty, let dir = opendir("/proc") else { return nil }
    defer { closedir(dir) }
    let targets = Set(inodes.map { "socket:[\($0)]" })
    var buffer = [CChar](repeating: 0, count: 256)
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        guard let pid = Int32(name) else { continue }
        guard let fds = opendir("/proc/\(pid)/fd") else { continue }
        defer { closedir(fds) }
        while let fdEntry = readdir(fds) {
            let fdName = withUnsafeBytes(of: fdEntry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if fdName.first == "." { continue }
            let n = readlink("/proc/\(pid)/fd/\(fdName)", &buffer, buffer.count - 1)
            guard n > 0 else { continue }
            let link = buffer.withUnsafeBufferPointer { p in
                String(decoding: UnsafeRawBufferPointer(start: p.baseAddress, count: n), as: UTF8.self)
            }
            if targets.contains(link) { return pid }
        }
    }
    return nil
}

/// CPUs this process may run on (Cpus_allowed in /proc/self/status), so that `taskset -c 1`
/// gives one event loop.
public func availableCoreCount() -> Int {
    if let status = readSmallFile("/proc/self/status") {
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed:") {
            let hex = line.dropFirst("Cpus_allowed:".count).filter { $0 != "," && $0 != " " && $0 != "\t" }
            var n = 0
            for ch in hex { if let v = ch.hexDigitValue { n += v.nonzeroBitCount } }
            if n > 0 { return n }
        }
    }
    return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
