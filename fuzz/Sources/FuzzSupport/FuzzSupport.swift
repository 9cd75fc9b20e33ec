/// libFuzzer's driver, for the entry point of a target.
///
/// SwiftPM links a debug executable with its `main` renamed to `<module>_main`, so each target
/// defines that symbol and hands its input function to ``fuzz(_:_:_:)``, which runs libFuzzer
/// (instead of libFuzzer's own `main`, which the renaming hides).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ input: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The target's input function; set once, before libFuzzer runs, on its only thread.
nonisolated(unsafe) private var body: (UnsafeBufferPointer<UInt8>) -> Void = { _ in }

/// Runs libFuzzer with the process's arguments, calling `input` with each input's bytes.
public func fuzz(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ input: @escaping (UnsafeBufferPointer<UInt8>) -> Void
) -> CInt {
    body = input
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}

/// libFuzzer's input function, which its runtime also links against.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    body(UnsafeBufferPointer(start: data, count: data == nil ? 0 : count))
    return 0
}
