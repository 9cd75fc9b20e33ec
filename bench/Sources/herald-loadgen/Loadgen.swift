import ArgumentParser
import BenchSupport
import Foundation
import NIOCore
import NIOPosix

@main
struct Loadgen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald-loadgen",
        abstract: "Socket.IO fan-out load generator: N WebSocket clients, an open-loop publisher on POST /api/emit.")

    @Option(help: "Server base URL (http://host:port).")
    var url = "http://127.0.0.1:8080"
    @Option(help: "Socket.IO path.")
    var path = "/socket.io/"
    @Option(help: "Extra query parameters for the Socket.IO URL (a=b&c=d).")
    var query = ""
    @Option(help: "Path of the emit endpoint.")
    var emitPath = "/api/emit"
    @Option(help: "Base URL of the server that is published to (default: --url); another node of a cluster, say.")
    var publishURL: String?
    @Option(help: "Bearer key sent as 'Authorization: Bearer <key>' on emits.")
    var bearer: String?
    @Option(name: [.customShort("n"), .long], help: "Number of Socket.IO clients (over all processes).")
    var clients = 1000
    @Option(help: "Publish rate, messages per second (open loop).")
    var rate: Double = 10
    @Option(help: "Publish duration in seconds.")
    var duration: Double = 5
    @Option(help: "Seconds to wait after the last send for outstanding deliveries.")
    var drain: Double = 3
    @Flag(help: "Connect, measure server memory with idle clients, publish nothing.")
    var idle = false
    @Option(help: "Seconds to let the server settle before the idle memory sample.")
    var settle: Double = 2
    @Option(help: "After --settle, wait at most this many seconds for the server to go quiet (< 10 % CPU).")
    var settleMax: Double = 30
    @Option(help: "Processes to spread the clients over (each process holds < 20k sockets).")
    var processes = 1
    @Option(help: ArgumentHelp("Internal: run as worker i/n.", visibility: .hidden))
    var worker: String?
    @Option(help: "Event loop threads (default: cores available to this process).")
    var threads: Int?
    @Option(help: "Connections in flight during the connect phase.")
    var connectConcurrency = 200
    @Option(help: "Connection attempts per second per process (0 = only bounded by concurrency).")
    var connectRate: Double = 0
    @Option(help: "Seconds for one client to finish TCP + upgrade + Socket.IO connect.")
    var connectTimeout: Double = 15
    @Option(help: "Source addresses: 'auto' (127.0.0.2 upwards, one per 10,000 clients), 'none', or a count.")
    var sources = "auto"
    @Option(help: "Extra bytes in each message (a \"pad\" string after seq), e.g. to fill a slow client's buffers.")
    var payloadPad = 0
    @Option(help: "HTTP keep-alive connections used to publish.")
    var publishers = 4
    @Option(help: "Server PID for CPU/RSS, 'auto' (the process listening on the port) or 'none'.")
    var serverPid = "auto"
    @Flag(help: "Make one client stop reading after its handshake (slow-client policy test).")
    var slowClient = false
    @Option(help: "Seconds to wait for the slow client's disconnection after it resumes reading.")
    var slowWait: Double = 5
    @Option(help: "A label copied into the JSON line.")
    var label = ""
    @Option(help: "Hard limit for the whole run in seconds (default: 120 + duration + drain); the process exits with status 3 when it is reached.")
    var timeLimit: Double?
    @Flag(help: "No human-readable table on stderr.")
    var quiet = false

    func validate() throws {
        guard clients >= 0, rate > 0, duration >= 0, processes >= 1 else {
            throw ValidationError("clients >= 0, rate > 0, duration >= 0, processes >= 1")
        }
        guard clients / processes < 19_500 else {
            throw ValidationError("\(clients) clients need --processes \(clients / 19_000 + 1) or more (20k open files per process)")
        }
    }

    mutating func run() async throws {
        let target = try parseBaseURL(url)
        // Every run is bounded in time, whatever the server does.
        let limit = timeLimit ?? (120 + settleMax + duration + drain + (slowClient ? slowWait : 0))
        Task.detached {
            try? await Task.sleep(for: .milliseconds(Int(limit * 1000)))
            FileHandle.standardError.write(Data("herald-loadgen: time limit of \(Int(limit)) s reached, exiting\n".utf8))
            Foundation.exit(3)
        }
        let threadCount = threads ?? availableCoreCount()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threadCount)
        do {
            if let worker {
                let parts = worker.split(separator: "/")
                guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else { throw ValidationError("--worker i/n") }
                try await runWorker(index: i, count: n, group: group, target: target)
            } else {
                try await runMain(group: group, target: target, threadCount: threadCount)
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
    }

    // MARK: shares

    func share(index: Int, count: Int) -> (offset: Int, count: Int) {
        let base = clients / count
        let extra = clients % count
        let n = base + (index < extra ? 1 : 0)
        let offset = index * base + Swift.min(index, extra)
        return (offset, n)
    }

    func sourceAddresses() throws -> [SocketAddress] {
        let count: Int
        switch sources {
        case "none": return []
        case "auto": count = Swift.max(1, (clients + 9_999) / 10_000)
        default:
            guard let c = Int(sources), c >= 0, c < 250 else { throw ValidationError("--sources auto|none|COUNT") }
            count = c
        }
        return try (0..<count).map { try SocketAddress(ipAddress: "127.0.0.\(2 + $0)", port: 0) }
    }

    // MARK: worker

    func runWorker(index: Int, count: Int, group: MultiThreadedEventLoopGroup, target: Target) async throws {
        let (offset, n) = share(index: index, count: count)
        let fleet = try ClientFleet(group: group, target: target, path: path, query: query, sources: try sourceAddresses())
        let phase = await fleet.connect(
            count: n, globalOffset: offset, concurrency: connectConcurrency,
            rate: connectRate, timeout: connectTimeout, slowIndex: nil)
        let snap = await fleet.snapshot()
        writeLine(fd: 1, "READY \(phase.connected) \(phase.failed) \(snap.connectTime.serialized())")
        let stdin = LineReader(fd: 0)
        while let line = await stdin.readLine() {
            let f = line.split(separator: " ")
            if f.first == "RESET" {
                await fleet.resetDeliveries()
                writeLine(fd: 1, "RESET-DONE \(selfCPUSeconds())")
            } else if f.first == "REPORT", f.count == 3, let sent = UInt64(f[1]), let wait = Double(f[2]) {
                let expected = UInt64(phase.connected) * sent
                let s = await fleet.waitForDeliveries(expected: expected, deadline: monotonicSeconds() + wait)
                let last = await fleet.lastDelivery()
                writeLine(
                    fd: 1,
                    "RESULT \(s.delivered) \(s.otherEvents) \(s.closedAfterHandshake) \(s.pingsAnswered) \(selfCPUSeconds()) \(last) \(s.latency.serialized())"
                )
                break
            }
        }
        await fleet.closeAll()
    }

    // MARK: main

    func runMain(group: MultiThreadedEventLoopGroup, target: Target, threadCount: Int) async throws {
        let pid: Int32? =
            switch serverPid {
            case "none": nil
            case "auto": findListeningPID(port: target.port)
            default: Int32(serverPid)
            }
        let s0 = pid.flatMap { ProcessSample.read(pid: $0) }
        let cpu0 = selfCPUSeconds()

        // Workers connect their shares while this process connects its own (share 0).
        var workers: [WorkerProcess] = []
        if processes > 1 {
            let args = Array(CommandLine.arguments.dropFirst())
            for i in 1..<processes {
                workers.append(try WorkerProcess(index: i, count: processes, arguments: args))
            }
        }
        defer { for w in workers { w.terminate() } }

        let connectStart = monotonicSeconds()
        let (offset, myCount) = share(index: 0, count: processes)
        let fleet = try ClientFleet(group: group, target: target, path: path, query: query, sources: try sourceAddresses())
        let phase = await fleet.connect(
            count: myCount, globalOffset: offset, concurrency: connectConcurrency,
            rate: connectRate, timeout: connectTimeout, slowIndex: slowClient ? 0 : nil)
        var connected = phase.connected
        var failed = phase.failed
        var connectHist = await fleet.snapshot().connectTime
        for w in workers {
            let rest = try await w.expect("READY")
            let f = rest.split(separator: " ", maxSplits: 2)
            guard f.count == 3, let c = Int(f[0]), let e = Int(f[1]), let h = Histogram(serialized: f[2]) else {
                throw LoadgenError.worker("bad READY line from worker \(w.index)")
            }
            connected += c
            failed += e
            connectHist.merge(h)
        }
        let connectSeconds = monotonicSeconds() - connectStart
        let s1 = pid.flatMap { ProcessSample.read(pid: $0) }

        try await Task.sleep(for: .milliseconds(Int(settle * 1000)))
        // Then wait until the server is quiet (it may still be handling the handshakes, or the
        // disconnections of a previous run): < 10 % of a core over 0.5 s, at most --settle-max s.
        var quietAfter = settle
        if let pid, var last = ProcessSample.read(pid: pid) {
            let quietStart = monotonicSeconds()
            while monotonicSeconds() - quietStart < settleMax {
                try await Task.sleep(for: .milliseconds(500))
                guard let now = ProcessSample.read(pid: pid) else { break }
                let busy = now.cpuSeconds - last.cpuSeconds
                last = now
                if busy < 0.05 { break }
            }
            quietAfter += monotonicSeconds() - quietStart
        }
        let sIdle = pid.flatMap { ProcessSample.read(pid: $0) }

        var report = Report()
        report.connected = connected
        report.failed = failed
        report.connectSeconds = connectSeconds
        report.settleSeconds = quietAfter
        report.connectHist = connectHist
        report.s0 = s0
        report.s1 = s1
        report.sIdle = sIdle
        report.pid = pid
        report.threads = threadCount

        if !idle && connected > 0 {
            // Deliveries before the publish phase (none expected) are discarded everywhere.
            await fleet.resetDeliveries()
            for w in workers { w.send("RESET") }
            let wait0 = runQueueWait(pid: getpid())
            var cpuAtPublish = selfCPUSeconds()
            for w in workers { cpuAtPublish += Double(try await w.expect("RESET-DONE")) ?? 0 }

            let count = Int((rate * duration).rounded())
            // The publisher has a loop of its own, so that busy client loops never delay a send.
            let publisherGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { publisherGroup.shutdownGracefully { _ in } }
            let publishTarget = try publishURL.map(parseBaseURL) ?? target
            let publisher = try await Publisher.connect(
                group: publisherGroup, eventLoop: publisherGroup.next(), host: publishTarget.host, port: publishTarget.port, path: emitPath,
                bearer: bearer, rate: rate, count: count, connections: publishers, padBytes: payloadPad)
            let s2 = pid.flatMap { ProcessSample.read(pid: $0) }
            let publishStartMicros = monotonicMicros()
            let pub = try await publisher.run(deadlineSeconds: duration + drain).get()
            let sent = UInt64(pub.sent)
            let receiversHere = phase.connected - (fleet.hasSlowClient ? 1 : 0)
            // Ask the workers for their results (they wait for their own deliveries meanwhile).
            let waitLeft = Swift.max(0.2, duration + drain - pub.elapsed)
            for w in workers { w.send("REPORT \(sent) \(waitLeft)") }
            var deliveries = await fleet.waitForDeliveries(
                expected: UInt64(receiversHere) * sent,
                deadline: monotonicSeconds() + waitLeft)
            var lastDelivery = await fleet.lastDelivery()
            var workerCPU = 0.0
            for w in workers {
                let rest = try await w.expect("RESULT")
                let f = rest.split(separator: " ", maxSplits: 6)
                guard f.count == 7, let d = UInt64(f[0]), let o = UInt64(f[1]), let closed = Int(f[2]),
                    let pings = UInt64(f[3]), let cpu = Double(f[4]), let last = UInt64(f[5]),
                    let h = Histogram(serialized: f[6])
                else { throw LoadgenError.worker("bad RESULT line from worker \(w.index)") }
                var snap = LoopStats.Snapshot.empty
                snap.delivered = d
                snap.otherEvents = o
                snap.closedAfterHandshake = closed
                snap.pingsAnswered = pings
                snap.latency = h
                deliveries.merge(snap)
                lastDelivery = Swift.max(lastDelivery, last)
                workerCPU += cpu
            }
            let s3 = pid.flatMap { ProcessSample.read(pid: $0) }
            publisher.close()

            report.published = true
            report.pub = pub
            report.sent = sent
            report.receivers = connected - (fleet.hasSlowClient ? 1 : 0)
            report.deliveries = deliveries
            report.deliverySpan = lastDelivery > publishStartMicros ? Double(lastDelivery - publishStartMicros) / 1e6 : 0
            report.s2 = s2
            report.s3 = s3
            report.workerCPU = workerCPU
            report.loadgenPublishCPU = selfCPUSeconds() + workerCPU - cpuAtPublish
            report.loadgenWait = runQueueWait(pid: getpid()) - wait0

            if fleet.hasSlowClient {
                report.slow = await fleet.checkSlowClient(wait: slowWait)
            }
        } else {
            for w in workers { w.send("REPORT 0 0") }
            for w in workers {
                let rest = try await w.expect("RESULT")
                let f = rest.split(separator: " ", maxSplits: 6)
                if f.count == 7, let cpu = Double(f[4]) { report.workerCPU += cpu }
            }
        }
        report.loadgenCPU = selfCPUSeconds() - cpu0 + report.workerCPU
        await fleet.closeAll()
        for w in workers { w.waitForExit() }

        let line = report.json(self)
        writeLine(fd: 1, line)
        if !quiet { FileHandle.standardError.write(Data(report.table(self).utf8)) }
    }
}

struct Target: Sendable {
    var host: String
    var port: Int
}

func parseBaseURL(_ url: String) throws -> Target {
    var rest = Substring(url)
    if rest.hasPrefix("http://") { rest = rest.dropFirst(7) } else if rest.hasPrefix("ws://") { rest = rest.dropFirst(5) }
    if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
    let parts = rest.split(separator: ":")
    guard let host = parts.first else { throw LoadgenError.badURL(url) }
    let port = parts.count > 1 ? Int(parts[1]) : 80
    guard let port else { throw LoadgenError.badURL(url) }
    return Target(host: String(host), port: port)
}
