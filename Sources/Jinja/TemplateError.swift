/// The one error type of the module: what went wrong, and where in the template text when known.
public struct TemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The template text does not parse (found by `Template.init`).
        case syntax
        /// A filter or test name that does not exist (found by `Template.init`).
        case unknownName
        /// An error while rendering: a type error, calling an undefined function, division by zero…
        case runtime
        /// The template called `raise_exception(message)`; `message` is the template's own text.
        case raised
        /// The template exceeded the step limit or the recursion limit.
        case limit
    }

    public let kind: Kind
    public let message: String
    /// 1-based line in the template source, when known.
    public let line: Int?
    /// 1-based column (in Unicode scalars) in the template source, when known.
    public let column: Int?

    public init(_ kind: Kind, _ message: String, line: Int? = nil, column: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    init(_ kind: Kind, _ message: String, at position: SourcePosition?) {
        self.init(kind, message, line: position?.line, column: position?.column)
    }

    public var description: String {
        let place = line.map { " at line \($0)" + (column.map { ", column \($0)" } ?? "") } ?? ""
        return "template \(kind.rawValue) error\(place): \(message)"
    }

    /// Attaches a position if the error has none yet (errors from helpers are located by their caller).
    func located(_ position: SourcePosition?) -> TemplateError {
        guard line == nil, let position else { return self }
        return TemplateError(kind, message, line: position.line, column: position.column)
    }
}

/// A 1-based line and column in template source.
struct SourcePosition: Sendable, Equatable {
    var line: Int
    var column: Int
}
