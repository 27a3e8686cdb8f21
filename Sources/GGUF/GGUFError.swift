/// Everything that can be wrong with a GGUF file. Messages name the file part at fault.
public struct GGUFError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "GGUF: \(message)" }
}
