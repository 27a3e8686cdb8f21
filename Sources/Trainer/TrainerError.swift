/// Why training could not start or go on. The message names the file, line, flag or tensor at fault
/// and, where it helps, what to do about it.
public struct TrainerError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
