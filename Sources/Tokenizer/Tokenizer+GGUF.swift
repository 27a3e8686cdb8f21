import GGUF

extension Tokenizer {
    /// Reads the tokenizer of a GGUF model (`tokenizer.ggml.*`). Only `tokenizer.ggml.model`
    /// "gpt2" (byte-level BPE) is supported; `tokenizer.ggml.pre` defaults to "default".
    public convenience init(gguf file: GGUFFile) throws(TokenizerError) {
        let meta = file.metadata
        func value(_ key: String) throws(TokenizerError) -> GGUFValue {
            guard let v = meta[key] else { throw .missingKey(key) }
            return v
        }
        func string(_ key: String) throws(TokenizerError) -> String {
            guard let s = try value(key).string else { throw .wrongType(key: key, expected: "a string") }
            return s
        }
        func strings(_ key: String) throws(TokenizerError) -> [String] {
            guard let a = try value(key).stringArray else { throw .wrongType(key: key, expected: "an array of strings") }
            return a
        }
        func optionalID(_ key: String) throws(TokenizerError) -> Int32? {
            guard let v = meta[key] else { return nil }
            guard let i = v.int else { throw .wrongType(key: key, expected: "an integer") }
            guard let id = Int32(exactly: i) else {
                throw .tokenIDOutOfRange(key: key, id: i, vocabularySize: Int(Int32.max))
            }
            return id
        }

        let model = try string("tokenizer.ggml.model")
        guard model == "gpt2" else { throw .unsupportedModel(model) }
        let tokens = try strings("tokenizer.ggml.tokens")
        let merges = try strings("tokenizer.ggml.merges")
        var types: [Int32]? = nil
        if let v = meta["tokenizer.ggml.token_type"] {
            guard let a = v.intArray else {
                throw .wrongType(key: "tokenizer.ggml.token_type", expected: "an array of integers")
            }
            types = a.map { Int32(truncatingIfNeeded: $0) }
        }
        let pre = meta["tokenizer.ggml.pre"] == nil ? "default" : try string("tokenizer.ggml.pre")
        var addBOS = false
        if let v = meta["tokenizer.ggml.add_bos_token"] {
            guard let b = v.bool else { throw .wrongType(key: "tokenizer.ggml.add_bos_token", expected: "a bool") }
            addBOS = b
        }
        try self.init(
            tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: pre,
            bos: try optionalID("tokenizer.ggml.bos_token_id"),
            eos: try optionalID("tokenizer.ggml.eos_token_id"),
            pad: try optionalID("tokenizer.ggml.padding_token_id"),
            unknown: try optionalID("tokenizer.ggml.unknown_token_id"),
            addBOS: addBOS)
    }
}
