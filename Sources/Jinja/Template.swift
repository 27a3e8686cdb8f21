/// Settings for compiling and rendering a template.
public struct TemplateOptions: Sendable {
    /// Drop the first newline after a block or comment tag.
    public var trimBlocks: Bool
    /// Drop spaces and tabs before a block or comment tag at the start of a line.
    public var lstripBlocks: Bool
    /// Keep a single trailing newline of the source (Jinja drops it by default).
    public var keepTrailingNewline: Bool
    /// Evaluation steps a render may take before failing with a `.limit` error. Every statement,
    /// expression and loop iteration is a step; building large strings and lists costs extra.
    public var maxSteps: Int
    /// Deepest nesting of macro calls while rendering, and of expressions and blocks while parsing.
    public var maxDepth: Int
    /// Longest text (in UTF-8 bytes) a render, or any block or macro output inside it, may produce.
    public var maxOutputBytes: Int

    public init(trimBlocks: Bool = true, lstripBlocks: Bool = true, keepTrailingNewline: Bool = false,
                maxSteps: Int = 1_000_000, maxDepth: Int = 64, maxOutputBytes: Int = 8 << 20) {
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
        self.keepTrailingNewline = keepTrailingNewline
        self.maxSteps = maxSteps
        self.maxDepth = maxDepth
        self.maxOutputBytes = maxOutputBytes
    }

    /// What Hugging Face transformers uses for `apply_chat_template`: trim_blocks and lstrip_blocks on.
    public static let huggingFace = TemplateOptions()

    /// Jinja's own defaults: no block trimming.
    public static let jinjaDefaults = TemplateOptions(trimBlocks: false, lstripBlocks: false)
}

/// A compiled Jinja template, as used by Hugging Face chat templates.
///
/// ```swift
/// let template = try Template(source)              // syntax errors and unknown filters surface here
/// let prompt = try template.render([
///     "messages": try Value(jsonText: #"[{"role": "user", "content": "Hi"}]"#),
///     "add_generation_prompt": true,
///     "bos_token": "<s>",
/// ])
/// ```
///
/// Rendering follows Jinja 3 as Hugging Face's `apply_chat_template` sets it up (an immutable
/// sandbox with the loop-controls extension, `{% generation %}` blocks, and a `tojson` that is
/// `json.dumps(ensure_ascii=False)`), with Python value semantics. Besides the caller's variables,
/// the globals `range`, `namespace`, `dict`, `raise_exception` and `strftime_now` are available.
/// A template is an immutable value and may be rendered concurrently from several threads.
///
/// Known differences from Jinja: tuples are lists (they print as `['a', 1]`, not `('a', 1)`);
/// `map`, `select`, `reject`, `unique` and `batch` give lists rather than lazy generators (so an
/// empty result is false in a test, where a generator would be true); `\N{...}` escapes in
/// string literals are not decoded; the tags `include`, `import`, `extends`, `block` and
/// recursive loops are not supported (a syntax error).
public struct Template: Sendable {
    let nodes: [Node]
    public let options: TemplateOptions

    /// Compiles `source`; throws a `.syntax` or `.unknownName` error with its line and column.
    public init(_ source: String, options: TemplateOptions = .huggingFace) throws(TemplateError) {
        let tokens = try Lexer.tokenize(source, options: options)
        nodes = try Parser.parse(tokens, maxDepth: max(options.maxDepth, 1) * 2)
        self.options = options
    }

    /// Renders with the given variables. Throws `.runtime` for type errors and calls of undefined
    /// functions, `.raised` for `raise_exception(...)`, and `.limit` when the step or depth limit is hit.
    public func render(_ context: [String: Value]) throws(TemplateError) -> String {
        var interpreter = Interpreter(globals: context, options: options)
        return try interpreter.render(nodes)
    }
}
