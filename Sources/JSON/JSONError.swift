/// Why a JSON document was rejected, and where.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The bytes do not follow the RFC 8259 grammar.
        case syntax
        /// A string holds bytes that are not well-formed UTF-8, or a lone UTF-16 surrogate escape.
        case invalidUTF8
        /// Containers nest deeper than `JSONParser.Limits.maxDepth`.
        case tooDeep
        /// The document is longer than `JSONParser.Limits.maxBytes`.
        case tooLarge
        /// A number is too large in magnitude for a `Double`.
        case numberOutOfRange
    }

    public let kind: Kind
    /// Byte offset into the input where the problem was found.
    public let offset: Int
    /// What is wrong, without the offset (for example "expected ':' after object key").
    public let message: String

    public init(_ kind: Kind, at offset: Int, _ message: String) {
        self.kind = kind
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) (at byte offset \(offset))" }
}
