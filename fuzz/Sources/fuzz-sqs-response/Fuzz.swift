import Foundation
import FuzzSupport

@testable import SQS

/// SQS's JSON answers: a ReceiveMessage answer (messages, their attributes in every data type)
/// and an error answer.
struct ReceiveOutput: Decodable { var Messages: [SQSMessage]? }

@_cdecl("fuzz_sqs_response_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        let data = Data(bytes)
        _ = try? JSONDecoder().decode(ReceiveOutput.self, from: data)
        _ = SQSError.fromJSONResponse(
            operation: "ReceiveMessage", statusCode: 400, headers: [("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender")],
            body: [UInt8](data))
    }
}
