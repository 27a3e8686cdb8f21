import Foundation
import JSON

/// The conversations the load sends: read from a JSONL file, or generated with about N tokens each.
///
/// A JSONL line is `{"messages": [...]}` (sent as is), `{"prompt": "text"}` or a bare JSON string
/// (both become one user message). Blank lines are skipped. Requests take the prompts in file order,
/// wrapping around. Generated prompts are random common English words (each about one BPE token with
/// its leading space) after a short instruction, so `--prompt-tokens` is approximate and the chat
/// template adds its own tokens.
public struct PromptSource: Sendable {
    public enum Kind: Sendable, Equatable {
        case file(path: String, count: Int)
        case generated(tokens: Int)
    }

    public let kind: Kind
    /// For `.file`: each line's `messages` array.
    private let conversations: [JSONValue]

    public init(generatedTokens: Int) throws(BenchError) {
        guard generatedTokens >= 1 else { throw BenchError("--prompt-tokens must be at least 1, not \(generatedTokens)") }
        kind = .generated(tokens: generatedTokens)
        conversations = []
    }

    public init(file path: String) throws(BenchError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BenchError("cannot read prompts file \(path)")
        }
        var list: [JSONValue] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let json: JSONValue
            do { json = try JSONParser.parse(trimmed) } catch {
                throw BenchError("\(path) line \(number + 1): invalid JSON: \(error)")
            }
            list.append(try Self.conversation(json, where: "\(path) line \(number + 1)"))
        }
        guard !list.isEmpty else { throw BenchError("prompts file \(path) holds no prompt") }
        kind = .file(path: path, count: list.count)
        conversations = list
    }

    static func conversation(_ json: JSONValue, where place: String) throws(BenchError) -> JSONValue {
        if let text = json.stringValue { return userMessage(text) }
        if let messages = json["messages"] {
            guard let array = messages.arrayValue, !array.isEmpty, array.allSatisfy({ $0.objectValue != nil }) else {
                throw BenchError("\(place): 'messages' must be a non-empty array of objects")
            }
            return messages
        }
        if let prompt = json["prompt"] {
            guard let text = prompt.stringValue else { throw BenchError("\(place): 'prompt' must be a string") }
            return userMessage(text)
        }
        throw BenchError("\(place): expected {\"messages\": [...]}, {\"prompt\": \"...\"} or a string")
    }

    static func userMessage(_ text: String) -> JSONValue {
        .array([.object(JSONObject([("role", "user"), ("content", .string(text))]))])
    }

    /// The `messages` of request `index`.
    public func messages(forRequest index: Int, random: inout RandomSource) -> JSONValue {
        switch kind {
        case .file(_, let count):
            return conversations[index % count]
        case .generated(let tokens):
            var text = "Continue this list of words:"
            let words = Self.words
            for _ in 0..<tokens {
                text += " "
                text += words[Int(random.next() % UInt64(words.count))]
            }
            return Self.userMessage(text)
        }
    }

    static let words = [
        "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as", "with",
        "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what",
        "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do",
        "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
        "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see",
        "number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "oil",
        "its", "now", "find", "long", "down", "day", "did", "get", "come", "made", "may", "part", "over", "new",
        "sound", "take", "only", "little", "work", "know", "place", "year", "live", "me", "back", "give", "most",
        "very", "after", "thing", "our", "just", "name", "good", "man", "think", "say", "great", "where", "help",
    ]
}
