/// Everything that can go wrong while building a tokenizer. Encoding and decoding never fail:
/// any string encodes, and any id list decodes (ids outside the vocabulary are skipped).
public enum TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A required GGUF metadata key is absent.
    case missingKey(String)
    /// A GGUF metadata key holds a value of another type than expected.
    case wrongType(key: String, expected: String)
    /// `tokenizer.ggml.model` names a tokenizer family we do not implement.
    case unsupportedModel(String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer we do not implement.
    case unknownPreTokenizer(String, known: [String])
    /// Two per-token arrays disagree in length.
    case lengthMismatch(what: String, count: Int, expected: Int)
    /// A merge line is not of the form "left right".
    case malformedMerge(index: Int, merge: String)
    /// A merge names a token (or produces one) that is not in the vocabulary.
    case unknownMergeToken(index: Int, merge: String, token: String)
    /// A special-token id key points outside the vocabulary.
    case tokenIDOutOfRange(key: String, id: Int, vocabularySize: Int)
    /// The vocabulary is empty.
    case emptyVocabulary

    public var description: String {
        switch self {
        case .missingKey(let key):
            "tokenizer: missing GGUF key '\(key)'"
        case .wrongType(let key, let expected):
            "tokenizer: GGUF key '\(key)' is not \(expected)"
        case .unsupportedModel(let model):
            "tokenizer: tokenizer.ggml.model '\(model)' is not supported (only 'gpt2', byte-level BPE)"
        case .unknownPreTokenizer(let name, let known):
            "tokenizer: unknown pre-tokenizer '\(name)' (tokenizer.ggml.pre); known: \(known.joined(separator: ", "))"
        case .lengthMismatch(let what, let count, let expected):
            "tokenizer: \(what) has \(count) entries, expected \(expected) (one per token)"
        case .malformedMerge(let index, let merge):
            "tokenizer: merge #\(index) '\(merge)' is not two tokens separated by a space"
        case .unknownMergeToken(let index, let merge, let token):
            "tokenizer: merge #\(index) '\(merge)' names '\(token)', which is not in the vocabulary"
        case .tokenIDOutOfRange(let key, let id, let size):
            "tokenizer: \(key) = \(id) is outside the vocabulary (size \(size))"
        case .emptyVocabulary:
            "tokenizer: the vocabulary is empty"
        }
    }
}
