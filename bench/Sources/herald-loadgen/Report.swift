import BenchSupport

struct Report {
    var connected = 0
    var failed = 0
    var connectSeconds = 0.0
    var settleSeconds = 0.0
    var connectHist = Histogram()
    var pid: Int32?
    var threads = 0
    var s0: ProcessSample?  // before connecting
    var s1: ProcessSample?  // all connected
    var sIdle: ProcessSample?  // after settling
    var s2: ProcessSample?  // publish start
    var s3: ProcessSample?  // after drain
    var published = false
    var pub = Publisher.Result()
    var sent: UInt64 = 0
    var receivers = 0
    var deliveries = LoopStats.Snapshot.empty
    var deliverySpan = 0.0
    var loadgenCPU = 0.0
    var workerCPU = 0.0
    var loadgenPublishCPU = 0.0
    var loadgenWait = 0.0  // main process only, publish phase
    var slow: ClientFleet.SlowResult?

    var expected: UInt64 { UInt64(receivers) * sent }
    var ratio: Double { expected == 0 ? 0 : Double(deliveries.delivered) / Double(expected) }
    var deliveriesPerSecond: Double {
        let span = Swift.max(deliverySpan, 0.001)
        return deliverySpan > 0 ? Double(deliveries.delivered) / span : 0
    }
    var rssPerConnection: Double? {
        guard let a = s0, let b = sIdle, connected > 0 else { return nil }
        return Double(b.rssKiB - a.rssKiB) * 1024 / Double(connected)
    }

    /// Connections completed per second of the connect phase (TCP, upgrade, Socket.IO CONNECT).
    var connectsPerSecond: Double { connectSeconds > 0 ? Double(connected) / connectSeconds : 0 }
    /// The server's CPU seconds (user + system) over the connect phase.
    var serverConnectCPU: Double? {
        guard let a = s0, let b = s1 else { return nil }
        return b.cpuSeconds - a.cpuSeconds
    }
    /// The server's CPU microseconds per connection made.
    var serverCPUPerConnection: Double? {
        guard let cpu = serverConnectCPU, connected > 0 else { return nil }
        return cpu * 1e6 / Double(connected)
    }

    func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }

    func loadgenCorePercent(_ o: Loadgen) -> Double {
        let span = Swift.max(deliverySpan, o.duration)
        guard span > 0 else { return 0 }
        return 100 * loadgenPublishCPU / (span * Double(Swift.max(1, availableCoreCount())))
    }

    func json(_ o: Loadgen) -> String {
        var j = JSONLine()
        j.add("label", o.label)
        j.add("url", o.url)
        j.add("mode", o.idle ? "idle" : "publish")
        j.add("clients", o.clients)
        j.add("connected", connected)
        j.add("connect_failures", failed)
        j.add("processes", o.processes)
        j.add("threads_per_process", threads)
        j.add("connect_total_s", connectSeconds)
        j.add("connects_per_s", connectsPerSecond, digits: 1)
        j.add("connect_p50_ms", ms(connectHist.value(atQuantile: 0.5)))
        j.add("connect_p99_ms", ms(connectHist.value(atQuantile: 0.99)))
        j.add("connect_max_ms", ms(connectHist.maxValue))
        j.add("settle_s", settleSeconds, digits: 1)
        if published {
            j.add("rate", o.rate)
            j.add("duration_s", o.duration)
            j.add("payload_pad", o.payloadPad)
            j.add("sent", sent)
            j.add("emit_accepted", pub.accepted)
            j.add("emit_rejected", pub.rejected)
            j.add("emit_unanswered", pub.sent - pub.answered)
            j.add("emit_resp_p50_ms", ms(pub.responseTime.value(atQuantile: 0.5)))
            j.add("emit_resp_p99_ms", ms(pub.responseTime.value(atQuantile: 0.99)))
            j.add("late_sends", pub.lateSends)
            j.add("receivers", receivers)
            j.add("expected", expected)
            j.add("received", deliveries.delivered)
            j.add("received_ratio", ratio, digits: 5)
            j.add("deliveries_per_s", deliveriesPerSecond, digits: 1)
            j.add("lat_p50_ms", ms(deliveries.latency.value(atQuantile: 0.5)))
            j.add("lat_p90_ms", ms(deliveries.latency.value(atQuantile: 0.9)))
            j.add("lat_p99_ms", ms(deliveries.latency.value(atQuantile: 0.99)))
            j.add("lat_max_ms", ms(deliveries.latency.maxValue))
            j.add("lat_mean_ms", deliveries.latency.mean / 1000)
            j.add("clients_closed_during_run", deliveries.closedAfterHandshake)
        }
        j.add("loadgen_cpu_s", loadgenCPU)
        if published {
            j.add("loadgen_cpu_publish_s", loadgenPublishCPU)
            j.add("loadgen_runqueue_wait_s", loadgenWait)
            // Share of the load generator's cores used while publishing: near 100 % means the
            // load generator, not the server, may be the limit.
            j.add("loadgen_cpu_pct_publish", loadgenCorePercent(o), digits: 1)
            j.add("loadgen_cpu_us_per_delivery", deliveries.delivered > 0 ? loadgenPublishCPU * 1e6 / Double(deliveries.delivered) : 0, digits: 2)
        }
        if let pid { j.add("server_pid", Int(pid)) } else { j.addNull("server_pid") }
        if let cpu = serverConnectCPU { j.add("server_cpu_connect_s", cpu, digits: 2) }
        if let perConnection = serverCPUPerConnection { j.add("server_cpu_us_per_connect", perConnection, digits: 1) }
        if let a = s2, let b = s3 {
            let cpu = b.cpuSeconds - a.cpuSeconds
            j.add("server_cpu_publish_s", cpu, digits: 2)
            j.add("server_cpu_pct_publish", deliverySpan > 0 ? 100 * cpu / Swift.max(deliverySpan, o.duration) : 0, digits: 1)
            // CPU per delivery is less sensitive than throughput to other load on the machine.
            j.add("server_runqueue_wait_s", b.runQueueWaitSeconds - a.runQueueWaitSeconds, digits: 2)
            j.add("server_cpu_us_per_delivery", deliveries.delivered > 0 ? cpu * 1e6 / Double(deliveries.delivered) : 0, digits: 2)
        }
        if let s = s0 { j.add("server_rss_before_kib", s.rssKiB) }
        if let s = sIdle { j.add("server_rss_idle_kib", s.rssKiB) }
        if let s = s3 { j.add("server_rss_after_kib", s.rssKiB) }
        if let s = sIdle { j.add("server_threads", s.threads) }
        if let r = rssPerConnection { j.add("rss_per_conn_bytes", r, digits: 0) }
        if let slow {
            j.add("slow_closed_while_stopped", slow.closedBeforeResume)
            j.add("slow_disconnected", slow.closedBeforeResume || slow.closedAfterResume)
            j.add("slow_received_while_stopped", slow.receivedWhileStopped)
            j.add("slow_received_total", slow.receivedTotal)
            if let c = slow.closeCode { j.add("slow_close_code", Int(c)) }
            j.add("slow_saw_eio_disconnect", slow.sawDisconnectPacket)
        }
        return j.text
    }

    func table(_ o: Loadgen) -> String {
        func f(_ v: Double, _ d: Int = 1) -> String { formatFixed(v, digits: d) }
        var lines: [String] = []
        lines.append("── herald-loadgen \(o.label.isEmpty ? "" : "[\(o.label)] ")\(o.url)  (\(o.processes) process(es) × \(threads) loop(s))")
        lines.append(
            "  clients     \(connected)/\(o.clients) connected, \(failed) failed; connect total \(f(connectSeconds, 2)) s (\(f(connectsPerSecond, 0))/s), p50 \(f(ms(connectHist.value(atQuantile: 0.5)))) ms, p99 \(f(ms(connectHist.value(atQuantile: 0.99)))) ms, max \(f(ms(connectHist.maxValue))) ms"
        )
        if published {
            lines.append(
                "  publish     \(sent) msgs at \(f(o.rate)) msg/s for \(f(o.duration)) s: \(pub.accepted) accepted, \(pub.rejected) rejected, \(pub.sent - pub.answered) unanswered, \(pub.lateSends) late; emit p99 \(f(ms(pub.responseTime.value(atQuantile: 0.99)), 2)) ms"
            )
            lines.append(
                "  deliveries  \(deliveries.delivered)/\(expected) (\(f(ratio * 100, 2)) %), \(f(deliveriesPerSecond, 0))/s; latency p50 \(f(ms(deliveries.latency.value(atQuantile: 0.5)), 2)) p90 \(f(ms(deliveries.latency.value(atQuantile: 0.9)), 2)) p99 \(f(ms(deliveries.latency.value(atQuantile: 0.99)), 2)) max \(f(ms(deliveries.latency.maxValue), 2)) ms"
            )
        }
        var server = "  server      "
        if let pid { server += "pid \(pid)" } else { server += "pid unknown" }
        if let cpu = serverConnectCPU, let perConnection = serverCPUPerConnection {
            server += "; CPU \(f(cpu, 2)) s connecting (\(f(perConnection, 0)) µs/connection)"
        }
        if let a = s2, let b = s3 {
            let cpu = b.cpuSeconds - a.cpuSeconds
            server += "; CPU \(f(cpu, 2)) s while publishing, \(f(b.runQueueWaitSeconds - a.runQueueWaitSeconds, 2)) s waiting for a CPU"
            if deliveries.delivered > 0 { server += " (\(f(cpu * 1e6 / Double(deliveries.delivered), 2)) µs/delivery)" }
        }
        if let a = s0, let b = sIdle { server += "; RSS \(a.rssKiB / 1024) MiB → \(b.rssKiB / 1024) MiB idle" }
        if let s = s3 { server += " → \(s.rssKiB / 1024) MiB after" }
        if let r = rssPerConnection { server += "; \(f(r / 1024, 1)) KiB per idle connection" }
        lines.append(server)
        var lg = "  loadgen     CPU \(f(loadgenCPU, 2)) s"
        if published {
            lg += ", \(f(loadgenPublishCPU, 2)) s while publishing"
            if deliveries.delivered > 0 { lg += " (\(f(loadgenPublishCPU * 1e6 / Double(deliveries.delivered), 2)) µs/delivery)" }
        }
        lines.append(lg)
        if published && loadgenCorePercent(o) > 85 {
            lines.append("  WARNING     the load generator used \(f(loadgenCorePercent(o), 0)) % of its CPUs: it may be the bottleneck")
        }
        if let slow {
            lines.append(
                "  slow client disconnected: \(slow.closedBeforeResume || slow.closedAfterResume) (while stopped: \(slow.closedBeforeResume)); got \(slow.receivedWhileStopped) while stopped, \(slow.receivedTotal) in all; close code \(slow.closeCode.map(String.init) ?? "-"), EIO disconnect packet \(slow.sawDisconnectPacket)"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
