/// A configuration or usage error of the load tester, with a message that names the offending value.
public struct BenchError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
