/// Recursive-descent parser from tokens to `Node`s, following the grammar and operator precedence of
/// Jinja's own parser (`jinja2/parser.py`). Unknown filters and tests are rejected here, so a template
/// that can never render fails when it is compiled.
struct Parser {
    private let tokens: [Token]
    private let maxDepth: Int
    private var index = 0
    private var depth = 0
    private var loopDepth = 0

    init(tokens: [Token], maxDepth: Int) {
        self.tokens = tokens
        self.maxDepth = maxDepth
    }

    static func parse(_ tokens: [Token], maxDepth: Int) throws(TemplateError) -> [Node] {
        var parser = Parser(tokens: tokens, maxDepth: maxDepth)
        let (nodes, _) = try parser.parseNodes(until: [])
        return nodes
    }

    // MARK: - Token helpers

    private var current: Token { tokens[min(index, tokens.count - 1)] }
    private var position: SourcePosition { current.position }

    private func peekKind(_ ahead: Int = 1) -> Token.Kind {
        tokens[min(index + ahead, tokens.count - 1)].kind
    }

    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private mutating func skipOp(_ op: String) -> Bool {
        guard isOp(op) else { return false }
        advance()
        return true
    }

    private mutating func skipName(_ name: String) -> Bool {
        guard isName(name) else { return false }
        advance()
        return true
    }

    private func fail(_ message: String, at pos: SourcePosition? = nil) -> TemplateError {
        TemplateError(.syntax, message, at: pos ?? position)
    }

    private func describe(_ kind: Token.Kind) -> String {
        switch kind {
        case .text: "template text"
        case .variableBegin: "'{{'"
        case .variableEnd: "end of print statement"
        case .blockBegin: "'{%'"
        case .blockEnd: "end of statement block"
        case .name(let n): "'\(n)'"
        case .int(let i): "'\(i)'"
        case .float(let d): "'\(d)'"
        case .string: "string"
        case .op(let o): "'\(o)'"
        case .eof: "end of template"
        }
    }

    private mutating func expectOp(_ op: String) throws(TemplateError) {
        guard skipOp(op) else { throw fail("expected '\(op)', got \(describe(current.kind))") }
    }

    private mutating func expectName() throws(TemplateError) -> String {
        guard case .name(let name) = current.kind else {
            throw fail("expected a name, got \(describe(current.kind))")
        }
        advance()
        return name
    }

    private mutating func expectBlockEnd() throws(TemplateError) {
        guard current.kind == .blockEnd else {
            throw fail("expected end of statement block, got \(describe(current.kind))")
        }
        advance()
    }

    private mutating func enter() throws(TemplateError) {
        depth += 1
        if depth > maxDepth { throw TemplateError(.limit, "template nested too deeply", at: position) }
    }

    private mutating func leave() { depth -= 1 }

    // MARK: - Statements

    /// Parses nodes until one of `endTags` opens a block tag; consumes `{%` and the tag name and
    /// returns which tag ended the body.
    private mutating func parseNodes(until endTags: Set<String>) throws(TemplateError) -> ([Node], String) {
        var nodes: [Node] = []
        while true {
            switch current.kind {
            case .text(let text):
                nodes.append(.text(text))
                advance()
            case .variableBegin:
                advance()
                let expr = try parseTuple()
                guard current.kind == .variableEnd else {
                    throw fail("expected end of print statement, got \(describe(current.kind))")
                }
                advance()
                nodes.append(.output(expr))
            case .blockBegin:
                let start = position
                advance()
                guard case .name(let tag) = current.kind else { throw fail("expected a tag name after '{%'") }
                if endTags.contains(tag) {
                    advance()
                    return (nodes, tag)
                }
                advance()
                try enter()
                nodes += try parseStatement(tag, at: start)
                leave()
            case .eof:
                if endTags.isEmpty { return (nodes, "") }
                let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                throw fail("unexpected end of template; looking for \(expected)")
            default:
                throw fail("unexpected \(describe(current.kind))")
            }
        }
    }

    private mutating func parseStatement(_ tag: String, at start: SourcePosition) throws(TemplateError) -> [Node] {
        switch tag {
        case "if": return [try parseIf()]
        case "for": return [try parseFor(at: start)]
        case "set": return [try parseSet()]
        case "macro": return [try parseMacro(at: start)]
        case "call": return [try parseCallBlock(at: start)]
        case "filter":
            let filters = try parseFilterChain()
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endfilter"])
            try expectBlockEnd()
            return [.filterBlock(filters: filters, body: body)]
        case "with":
            var assignments: [(AssignTarget, Expr)] = []
            while current.kind != .blockEnd {
                if !assignments.isEmpty { try expectOp(",") }
                let target = try parseAssignTarget()
                try expectOp("=")
                assignments.append((target, try parseExpression()))
            }
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endwith"])
            try expectBlockEnd()
            return [.with(assignments: assignments, body: body)]
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endgeneration"])
            try expectBlockEnd()
            return body
        case "break", "continue":
            guard loopDepth > 0 else { throw fail("'\(tag)' outside of a loop", at: start) }
            try expectBlockEnd()
            return [tag == "break" ? .break(start) : .continue(start)]
        case "include", "import", "from", "extends", "block":
            throw fail("the '\(tag)' tag is not supported in chat templates", at: start)
        default:
            if tag.hasPrefix("end") || tag == "else" || tag == "elif" {
                throw fail("unexpected '\(tag)'", at: start)
            }
            throw fail("unknown tag '\(tag)'", at: start)
        }
    }

    private mutating func parseIf() throws(TemplateError) -> Node {
        var branches: [(condition: Expr, body: [Node])] = []
        var condition = try parseTuple()
        while true {
            try expectBlockEnd()
            let (body, end) = try parseNodes(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseTuple()
            case "else":
                try expectBlockEnd()
                let (otherwise, _) = try parseNodes(until: ["endif"])
                try expectBlockEnd()
                return .if(branches: branches, otherwise: otherwise)
            default:
                try expectBlockEnd()
                return .if(branches: branches, otherwise: [])
            }
        }
    }

    private mutating func parseFor(at start: SourcePosition) throws(TemplateError) -> Node {
        let target = try parseAssignTarget()
        guard skipName("in") else { throw fail("expected 'in' in for loop, got \(describe(current.kind))") }
        let iterable = try parseTuple(withCondition: false)
        var condition: Expr? = nil
        if skipName("if") { condition = try parseExpression() }
        if isName("recursive") { throw fail("recursive for loops are not supported") }
        try expectBlockEnd()
        loopDepth += 1
        let (body, end) = try parseNodes(until: ["else", "endfor"])
        loopDepth -= 1
        var otherwise: [Node] = []
        if end == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseNodes(until: ["endfor"])
        }
        try expectBlockEnd()
        let targets: [String]
        let unpacks: Bool
        switch target {
        case .name(let name): (targets, unpacks) = ([name], false)
        case .names(let names): (targets, unpacks) = (names, true)
        case .attribute: throw fail("cannot assign to an attribute in a for loop", at: start)
        }
        return .for(For(targets: targets, unpacks: unpacks, iterable: iterable, condition: condition,
                        body: body, otherwise: otherwise, position: start))
    }

    private mutating func parseAssignTarget() throws(TemplateError) -> AssignTarget {
        let parenthesized = skipOp("(")
        let first = try expectName()
        if !parenthesized, skipOp(".") {
            return .attribute(object: first, name: try expectName())
        }
        var names = [first]
        var isTuple = parenthesized
        while skipOp(",") {
            isTuple = true
            if case .name = current.kind { names.append(try expectName()) } else { break }
        }
        if parenthesized { try expectOp(")") }
        return isTuple ? .names(names) : .name(first)
    }

    private mutating func parseSet() throws(TemplateError) -> Node {
        let target = try parseAssignTarget()
        if skipOp("=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return .set(target: target, value: value)
        }
        var filters: [FilterCall] = []
        if skipOp("|") { filters = try parseFilterChain() }
        try expectBlockEnd()
        let (body, _) = try parseNodes(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(target: target, body: body, filters: filters)
    }

    private mutating func parseParameters() throws(TemplateError) -> [(name: String, defaultValue: Expr?)] {
        var parameters: [(name: String, defaultValue: Expr?)] = []
        try expectOp("(")
        while !skipOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if skipOp(")") { break }
            let name = try expectName()
            let defaultValue = skipOp("=") ? try parseExpression() : nil
            parameters.append((name, defaultValue))
        }
        return parameters
    }

    private mutating func parseMacro(at start: SourcePosition) throws(TemplateError) -> Node {
        let name = try expectName()
        let parameters = try parseParameters()
        try expectBlockEnd()
        let savedLoopDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseNodes(until: ["endmacro"])
        loopDepth = savedLoopDepth
        try expectBlockEnd()
        return .macro(Macro(name: name, parameters: parameters, body: body, position: start))
    }

    private mutating func parseCallBlock(at start: SourcePosition) throws(TemplateError) -> Node {
        let parameters = isOp("(") ? try parseParameters() : []
        let call = try parseExpression()
        guard case .call = call.kind else { throw fail("expected a call after 'call'", at: call.position) }
        try expectBlockEnd()
        let savedLoopDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseNodes(until: ["endcall"])
        loopDepth = savedLoopDepth
        try expectBlockEnd()
        return .callBlock(caller: Macro(name: "caller", parameters: parameters, body: body, position: start), call: call)
    }

    // MARK: - Expressions

    /// An expression, or several separated by commas (a tuple, which is a list here).
    private mutating func parseTuple(withCondition: Bool = true) throws(TemplateError) -> Expr {
        let start = position
        let first = try parseExpression(withCondition: withCondition)
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if current.kind == .variableEnd || current.kind == .blockEnd || isOp(")") { break }
            items.append(try parseExpression(withCondition: withCondition))
        }
        return Expr(.list(items), start)
    }

    private mutating func parseExpression(withCondition: Bool = true) throws(TemplateError) -> Expr {
        try enter()
        defer { leave() }
        return withCondition ? try parseConditional() : try parseOperators(above: 0)
    }

    private mutating func parseConditional() throws(TemplateError) -> Expr {
        var expr = try parseOperators(above: 0)
        while isName("if") {
            let start = position
            advance()
            let condition = try parseOperators(above: 0)
            let otherwise = skipName("else") ? try parseConditional() : nil
            expr = Expr(.conditional(condition: condition, then: expr, otherwise: otherwise), start)
        }
        return expr
    }

    /// Binding strength of the operator at the current token (0: not a binary operator), following
    /// Jinja: `or` < `and` < `not` < comparisons and `in` < `+ -` < `~` < `* / // %` < `**`.
    private var operatorPrecedence: Int {
        switch current.kind {
        case .name("or"): return 1
        case .name("and"): return 2
        case .name("in"): return 4
        case .name("not"): return peekKind() == .name("in") ? 4 : 0
        case .op("=="), .op("!="), .op("<"), .op("<="), .op(">"), .op(">="): return 4
        case .op("+"), .op("-"): return 5
        case .op("~"): return 6
        case .op("*"), .op("/"), .op("//"), .op("%"): return 7
        case .op("**"): return 8
        default: return 0
        }
    }

    /// Precedence climbing over every binary operator (one stack frame per nesting level instead of
    /// one per precedence level, so deep templates need little stack). All operators are
    /// left-associative, as in Jinja (`2 ** 3 ** 2` is 64); comparisons chain (`a < b < c`).
    private mutating func parseOperators(above minimum: Int) throws(TemplateError) -> Expr {
        var left: Expr
        if minimum < 3, isName("not"), peekKind() != .name("in") {
            let start = position
            advance()
            try enter()
            defer { leave() }
            left = Expr(.not(try parseOperators(above: 2)), start)
        } else {
            left = try parseUnary()
        }
        while true {
            let precedence = operatorPrecedence
            guard precedence > minimum else { return left }
            let start = position
            switch precedence {
            case 1:
                advance()
                left = Expr(.or(left, try parseOperators(above: 1)), start)
            case 2:
                advance()
                left = Expr(.and(left, try parseOperators(above: 2)), start)
            case 4:
                var chain: [(op: String, Expr)] = []
                while operatorPrecedence == 4 {
                    var op: String
                    switch current.kind {
                    case .op(let o): op = o
                    case .name("not"): op = "not in"; advance()
                    default: op = "in"
                    }
                    advance()
                    chain.append((op, try parseOperators(above: 4)))
                }
                left = Expr(.compare(left, chain), left.position)
            default:
                guard case .op(let op) = current.kind else { return left }
                advance()
                left = Expr(.binary(op, left, try parseOperators(above: precedence)), start)
            }
        }
    }

    private mutating func parseUnary(withFilter: Bool = true) throws(TemplateError) -> Expr {
        try enter()
        defer { leave() }
        let start = position
        var expr: Expr
        if isOp("-") || isOp("+") {
            let op = isOp("-") ? "-" : "+"
            advance()
            expr = Expr(.unary(op, try parseUnary(withFilter: false)), start)
        } else {
            expr = try parsePrimary()
        }
        expr = try parsePostfix(expr)
        if withFilter { expr = try parseFilterExpression(expr) }
        return expr
    }

    private mutating func parsePrimary() throws(TemplateError) -> Expr {
        let start = position
        switch current.kind {
        case .name(let name):
            advance()
            switch name {
            case "true", "True": return Expr(.literal(.bool(true)), start)
            case "false", "False": return Expr(.literal(.bool(false)), start)
            case "none", "None": return Expr(.literal(.none), start)
            default: return Expr(.name(name), start)
            }
        case .string(var text):
            advance()
            while case .string(let more) = current.kind {
                text += more
                advance()
            }
            return Expr(.literal(.string(text)), start)
        case .int(let i):
            advance()
            return Expr(.literal(.int(i)), start)
        case .float(let d):
            advance()
            return Expr(.literal(.double(d)), start)
        case .op("("):
            advance()
            if skipOp(")") { return Expr(.list([]), start) }
            let expr = try parseTuple()
            try expectOp(")")
            return expr
        case .op("["):
            advance()
            var items: [Expr] = []
            while !skipOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if skipOp("]") { break }
                items.append(try parseExpression())
            }
            return Expr(.list(items), start)
        case .op("{"):
            advance()
            var pairs: [(key: Expr, value: Expr)] = []
            while !skipOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if skipOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
            }
            return Expr(.dict(pairs), start)
        default:
            throw fail("unexpected \(describe(current.kind))")
        }
    }

    private mutating func parsePostfix(_ base: Expr) throws(TemplateError) -> Expr {
        var expr = base
        while true {
            let start = expr.position
            if skipOp(".") {
                switch current.kind {
                case .name(let name):
                    advance()
                    expr = Expr(.attribute(expr, name), start)
                case .int(let i):
                    advance()
                    expr = Expr(.item(expr, Expr(.literal(.int(i)), start)), start)
                default:
                    throw fail("expected an attribute name after '.', got \(describe(current.kind))")
                }
            } else if skipOp("[") {
                expr = try parseSubscript(expr, at: start)
            } else if isOp("(") {
                expr = Expr(.call(expr, try parseArguments()), start)
            } else {
                return expr
            }
        }
    }

    private mutating func parseSubscript(_ base: Expr, at start: SourcePosition) throws(TemplateError) -> Expr {
        var parts: [Expr?] = []
        var current: Expr? = nil
        var isSlice = false
        while !skipOp("]") {
            if skipOp(":") {
                isSlice = true
                parts.append(current)
                current = nil
                guard parts.count < 3 else { throw fail("too many ':' in slice") }
            } else {
                guard current == nil else { throw fail("expected ']' or ':' in subscript") }
                current = try parseExpression()
            }
        }
        parts.append(current)
        if !isSlice {
            guard let index = parts[0] else { throw fail("empty subscript", at: start) }
            return Expr(.item(base, index), start)
        }
        while parts.count < 3 { parts.append(nil) }
        return Expr(.slice(base, start: parts[0], stop: parts[1], step: parts[2]), start)
    }

    private mutating func parseArguments() throws(TemplateError) -> Arguments {
        var arguments = Arguments()
        try expectOp("(")
        var first = true
        while !skipOp(")") {
            if !first { try expectOp(",") }
            first = false
            if skipOp(")") { break }
            if case .name(let name) = current.kind, peekKind() == .op("=") {
                advance()
                advance()
                arguments.keyword.append((name, try parseExpression()))
            } else {
                if isOp("*") || isOp("**") { throw fail("*args and **kwargs are not supported") }
                guard arguments.keyword.isEmpty else { throw fail("positional argument after keyword argument") }
                arguments.positional.append(try parseExpression())
            }
        }
        return arguments
    }

    private mutating func parseFilterCall() throws(TemplateError) -> FilterCall {
        let start = position
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        guard Filters.names.contains(name) else {
            throw TemplateError(.unknownName, "no filter named '\(name)'", at: start)
        }
        let arguments = isOp("(") ? try parseArguments() : Arguments()
        return FilterCall(name: name, arguments: arguments, position: start)
    }

    private mutating func parseFilterChain() throws(TemplateError) -> [FilterCall] {
        var filters: [FilterCall] = []
        repeat {
            filters.append(try parseFilterCall())
        } while skipOp("|")
        return filters
    }

    private mutating func parseFilterExpression(_ base: Expr) throws(TemplateError) -> Expr {
        var expr = base
        while true {
            let start = position
            if skipOp("|") {
                expr = Expr(.filter(expr, try parseFilterCall()), start)
            } else if isName("is") {
                advance()
                let negated = skipName("not")
                let nameStart = position
                let name = try expectName()
                guard Tests.names.contains(name) else {
                    throw TemplateError(.unknownName, "no test named '\(name)'", at: nameStart)
                }
                var arguments = Arguments()
                if isOp("(") {
                    arguments = try parseArguments()
                } else if startsBareTestArgument {
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                expr = Expr(.test(expr, name: name, arguments: arguments, negated: negated), start)
            } else if isOp("(") {
                expr = Expr(.call(expr, try parseArguments()), expr.position)
            } else {
                return expr
            }
        }
    }

    /// Whether the token after a test name starts its single unparenthesized argument (`is equalto 3`).
    private var startsBareTestArgument: Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and", "if", "in", "not", "is"].contains(name)
        case .string, .int, .float, .op("["), .op("{"): return true
        default: return false
        }
    }
}
