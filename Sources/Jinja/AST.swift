/// The parsed form of a template: statements (`Node`) that contain expressions (`Expr`).

// MARK: - Statements

indirect enum Node: Sendable {
    case text(String)
    case output(Expr)
    case `if`(branches: [(condition: Expr, body: [Node])], otherwise: [Node])
    case `for`(For)
    case set(target: AssignTarget, value: Expr)
    case setBlock(target: AssignTarget, body: [Node], filters: [FilterCall])
    case macro(Macro)
    /// `{% call(params) callee(args) %}body{% endcall %}`: calls `callee` with `caller` bound to the body.
    case callBlock(caller: Macro, call: Expr)
    case filterBlock(filters: [FilterCall], body: [Node])
    /// `{% with a = 1 %}…{% endwith %}`: a scope with extra variables.
    case with(assignments: [(AssignTarget, Expr)], body: [Node])
    case `break`(SourcePosition)
    case `continue`(SourcePosition)
}

struct For: Sendable {
    var targets: [String]
    var unpacks: Bool
    var iterable: Expr
    var condition: Expr?
    var body: [Node]
    var otherwise: [Node]
    var position: SourcePosition
}

/// A macro definition; also the anonymous body of a `call` block.
struct Macro: Sendable {
    var name: String
    var parameters: [(name: String, defaultValue: Expr?)]
    var body: [Node]
    var position: SourcePosition
}

enum AssignTarget: Sendable {
    case name(String)
    case names([String])
    /// `ns.attribute` on a namespace.
    case attribute(object: String, name: String)
}

struct FilterCall: Sendable {
    var name: String
    var arguments: Arguments
    var position: SourcePosition
}

struct Arguments: Sendable {
    var positional: [Expr] = []
    var keyword: [(name: String, value: Expr)] = []
}

// MARK: - Expressions

struct Expr: Sendable {
    indirect enum Kind: Sendable {
        case literal(Value)
        case name(String)
        case list([Expr])
        case dict([(key: Expr, value: Expr)])
        case attribute(Expr, String)
        case item(Expr, Expr)
        case slice(Expr, start: Expr?, stop: Expr?, step: Expr?)
        case call(Expr, Arguments)
        case filter(Expr, FilterCall)
        case test(Expr, name: String, arguments: Arguments, negated: Bool)
        case unary(String, Expr)
        case binary(String, Expr, Expr)
        /// A chain such as `a < b <= c`.
        case compare(Expr, [(op: String, Expr)])
        case and(Expr, Expr)
        case or(Expr, Expr)
        case not(Expr)
        case conditional(condition: Expr, then: Expr, otherwise: Expr?)
    }

    var kind: Kind
    var position: SourcePosition

    init(_ kind: Kind, _ position: SourcePosition) {
        self.kind = kind
        self.position = position
    }
}
