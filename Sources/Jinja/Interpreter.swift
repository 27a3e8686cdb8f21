/// Executes statements: output, control flow, assignment, loops, macros. Expressions are in
/// `Evaluator.swift`, filters, tests, methods and globals in their own files.
struct Interpreter {
    /// Innermost scope last; `scopes[0]` holds the caller's variables and top-level `set`s.
    var scopes: [[String: Value]]
    let options: TemplateOptions
    var steps = 0
    var callDepth = 0
    /// The body of the `call` block whose macro is running, bound to the name `caller`.
    var callers: [Macro] = []

    init(globals: [String: Value], options: TemplateOptions) {
        scopes = [globals]
        self.options = options
    }

    enum Flow {
        case normal, breakLoop, continueLoop
    }

    mutating func render(_ nodes: [Node]) throws(TemplateError) -> String {
        var out = ""
        _ = try execute(nodes, into: &out)
        return out
    }

    // MARK: - Limits

    /// Counts `cost` evaluation steps and fails once the budget is spent.
    mutating func step(_ cost: Int = 1, at position: SourcePosition? = nil) throws(TemplateError) {
        let (sum, overflow) = steps.addingReportingOverflow(max(cost, 0))
        steps = sum
        if overflow || steps > options.maxSteps {
            throw TemplateError(.limit, "template exceeded the limit of \(options.maxSteps) evaluation steps",
                                at: position)
        }
    }

    /// Charges for building a string or list of `size` elements, so templates cannot allocate without bound.
    mutating func chargeAllocation(_ size: Int, at position: SourcePosition?) throws(TemplateError) {
        try step(size / 64, at: position)
    }

    /// Appends rendered text, failing once the text being built exceeds the output limit.
    mutating func emit(_ text: String, into out: inout String, at position: SourcePosition?) throws(TemplateError) {
        out += text
        if out.utf8.count > options.maxOutputBytes {
            throw TemplateError(.limit, "template output exceeded the limit of \(options.maxOutputBytes) bytes", at: position)
        }
    }

    // MARK: - Variables

    func lookup(_ name: String) -> Value {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        if name == "caller", let caller = callers.last { return .function(Function(kind: .macro(caller))) }
        if Builtins.names.contains(name) { return .function(Function(kind: .builtin(name))) }
        return .undefined
    }

    mutating func assign(_ name: String, _ value: Value) {
        scopes[scopes.count - 1][name] = value
    }

    mutating func assign(_ target: AssignTarget, _ value: Value, at position: SourcePosition) throws(TemplateError) {
        switch target {
        case .name(let name):
            assign(name, value)
        case .names(let names):
            let items = try unpack(value, count: names.count, at: position)
            for (name, item) in zip(names, items) { assign(name, item) }
        case .attribute(let object, let name):
            guard case .namespace(let ns) = lookup(object) else {
                throw TemplateError(.runtime, "cannot assign attribute '\(name)' on non-namespace object '\(object)'",
                                    at: position)
            }
            ns[name] = value
        }
    }

    func unpack(_ value: Value, count: Int, at position: SourcePosition) throws(TemplateError) -> [Value] {
        let items: [Value]
        switch value {
        case .array(let a): items = a
        case .string(let s): items = s.unicodeScalars.map { .string(String($0)) }
        case .object(let o): items = o.keys.map { .string($0) }
        default: throw TemplateError(.runtime, "cannot unpack non-iterable \(value.typeName) object", at: position)
        }
        guard items.count == count else {
            throw TemplateError(.runtime, "expected \(count) values to unpack, got \(items.count)", at: position)
        }
        return items
    }

    // MARK: - Statements

    mutating func execute(_ nodes: [Node], into out: inout String) throws(TemplateError) -> Flow {
        for node in nodes {
            try step()
            let flow = try execute(node, into: &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private mutating func execute(_ node: Node, into out: inout String) throws(TemplateError) -> Flow {
        switch node {
        case .text(let text):
            try emit(text, into: &out, at: nil)
        case .output(let expr):
            let text = try evaluate(expr).renderedString
            try chargeAllocation(text.utf8.count, at: expr.position)
            try emit(text, into: &out, at: expr.position)
        case .if(let branches, let otherwise):
            for branch in branches where try evaluate(branch.condition).isTruthy {
                return try execute(branch.body, into: &out)
            }
            return try execute(otherwise, into: &out)
        case .for(let loop):
            return try executeFor(loop, into: &out)
        case .set(let target, let expr):
            try assign(target, try evaluate(expr), at: expr.position)
        case .setBlock(let target, let body, let filters):
            var captured = ""
            _ = try execute(body, into: &captured)
            var value = Value.string(captured)
            for filter in filters { value = try applyFilter(filter, to: value) }
            try assign(target, value, at: filters.first?.position ?? SourcePosition(line: 1, column: 1))
        case .macro(let macro):
            assign(macro.name, .function(Function(kind: .macro(macro))))
        case .callBlock(let caller, let call):
            guard case .call(let calleeExpr, let arguments) = call.kind else { return .normal }
            callers.append(caller)
            defer { callers.removeLast() }
            try emit(try evaluateCall(calleeExpr, arguments, at: call.position).renderedString, into: &out, at: call.position)
        case .filterBlock(let filters, let body):
            var captured = ""
            let flow = try execute(body, into: &captured)
            var value = Value.string(captured)
            for filter in filters { value = try applyFilter(filter, to: value) }
            try emit(value.renderedString, into: &out, at: filters.first?.position)
            return flow
        case .with(let assignments, let body):
            var values: [(AssignTarget, Value, SourcePosition)] = []
            for (target, expr) in assignments { values.append((target, try evaluate(expr), expr.position)) }
            scopes.append([:])
            defer { scopes.removeLast() }
            for (target, value, position) in values { try assign(target, value, at: position) }
            return try execute(body, into: &out)
        case .break:
            return .breakLoop
        case .continue:
            return .continueLoop
        }
        return .normal
    }

    private mutating func executeFor(_ loop: For, into out: inout String) throws(TemplateError) -> Flow {
        let iterable = try evaluate(loop.iterable)
        var items = try iterate(iterable, at: loop.iterable.position)
        func bind(_ interpreter: inout Interpreter, _ item: Value) throws(TemplateError) {
            if loop.unpacks {
                let parts = try interpreter.unpack(item, count: loop.targets.count, at: loop.position)
                for (name, part) in zip(loop.targets, parts) { interpreter.assign(name, part) }
            } else if let name = loop.targets.first {
                interpreter.assign(name, item)
            }
        }
        if let condition = loop.condition {
            var kept: [Value] = []
            for item in items {
                try step(at: loop.position)
                scopes.append([:])
                defer { scopes.removeLast() }
                try bind(&self, item)
                if try evaluate(condition).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty { return try execute(loop.otherwise, into: &out) }
        for (i, item) in items.enumerated() {
            try step(at: loop.position)
            scopes.append(["loop": .loop(LoopContext(items: items, index: i))])
            defer { scopes.removeLast() }
            try bind(&self, item)
            let flow = try execute(loop.body, into: &out)
            if flow == .breakLoop { break }
        }
        return .normal
    }

    /// The items a `for` loop or a filter walks: list elements, dict keys, string characters;
    /// undefined and none give nothing, as iterating Jinja's Undefined does.
    func iterate(_ value: Value, at position: SourcePosition?) throws(TemplateError) -> [Value] {
        switch value {
        case .array(let a): return a
        case .object(let o): return o.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        case .namespace(let ns): return ns.snapshot.keys.map { .string($0) }
        default:
            throw TemplateError(.runtime, "'\(value.typeName)' object is not iterable", at: position)
        }
    }

    // MARK: - Macros

    mutating func callMacro(_ macro: Macro, positional: [Value], keyword: [(String, Value)],
                            at position: SourcePosition) throws(TemplateError) -> Value {
        guard callDepth < options.maxDepth else {
            throw TemplateError(.limit, "macro '\(macro.name)' exceeded the recursion limit of \(options.maxDepth)",
                                at: position)
        }
        guard positional.count <= macro.parameters.count else {
            throw TemplateError(.runtime, "macro '\(macro.name)' takes not more than \(macro.parameters.count) argument(s)",
                                at: position)
        }
        var frame: [String: Value] = [:]
        for (name, value) in keyword {
            guard macro.parameters.contains(where: { $0.name == name }) else {
                throw TemplateError(.runtime, "macro '\(macro.name)' takes no keyword argument '\(name)'", at: position)
            }
            frame[name] = value
        }
        let saved = scopes
        callDepth += 1
        defer {
            callDepth -= 1
            scopes = saved
        }
        scopes = [scopes[0], [:]]
        for (i, parameter) in macro.parameters.enumerated() {
            if i < positional.count {
                frame[parameter.name] = positional[i]
            } else if frame[parameter.name] == nil {
                frame[parameter.name] = try parameter.defaultValue.map { (e) throws(TemplateError) in try evaluate(e) } ?? .undefined
            }
            scopes[1][parameter.name] = frame[parameter.name]
        }
        var out = ""
        _ = try execute(macro.body, into: &out)
        return .string(out)
    }
}
