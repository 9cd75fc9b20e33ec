import AsyncHTTPClient
import Foundation
import NIOCore

/// A complete HTTP response: status, headers and body bytes.
struct HTTPResult: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]
}

/// Sends one request with AsyncHTTPClient and collects the response, mapping failures to ``SQSError``.
///
/// `timeout` bounds the whole exchange, body included: AsyncHTTPClient's own deadline stops at the
/// headers. That deadline is set a little earlier, so that AsyncHTTPClient can report why it never
/// connected (it retries refused connections until then) before the watchdog cancels it.
func performHTTP(
    client: HTTPClient,
    method: String,
    url: URL,
    headers: [(name: String, value: String)],
    body: [UInt8],
    timeout: Duration,
    operation: String,
    maxResponseBytes: Int = 16 << 20
) async throws -> HTTPResult {
    let headersDeadline = timeout - min(timeout / 10, .seconds(1))
    let deadline = TimeAmount.nanoseconds(
        headersDeadline.components.seconds * 1_000_000_000
            + headersDeadline.components.attoseconds / 1_000_000_000)

    do {
        return try await withThrowingTaskGroup(of: HTTPResult?.self) { group in
            group.addTask {
                var request = HTTPClientRequest(url: url.absoluteString)
                request.method = .init(rawValue: method)
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                if !body.isEmpty { request.body = .bytes(ByteBuffer(bytes: body)) }
                let response = try await client.execute(request, timeout: deadline)
                let buffer = try await response.body.collect(upTo: maxResponseBytes)
                return HTTPResult(
                    status: Int(response.status.code),
                    headers: response.headers.map { ($0.name, $0.value) },
                    body: Array(buffer.readableBytesView)
                )
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            if let first = try await group.next(), let response = first { return response }
            // The watchdog won: AsyncHTTPClient's deadline did not cover a slow body.
            throw SQSError(kind: .timeout, operation: operation, message: "no response within \(timeout)")
        }
    } catch let error as SQSError {
        throw error
    } catch let error as HTTPClientError
        where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
    {
        throw SQSError(kind: .timeout, operation: operation, message: "no response within \(timeout)", underlying: error)
    } catch let error where error is CancellationError || Task.isCancelled {
        throw CancellationError()
    } catch {
        throw SQSError(
            kind: .transport, operation: operation, message: "\(method) \(url.host ?? url.absoluteString)",
            underlying: error)
    }
}
