import Foundation
import JSON

/// One turn of a conversation.
public struct ChatTurn: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(_ role: String, _ content: String) {
        self.role = role
        self.content = content
    }
}

/// One line of a training JSONL file, parsed into what it means.
public enum TrainingRecord: Sendable, Equatable {
    /// Turns to render with the chat template; the loss covers every assistant turn.
    case conversation([ChatTurn])
    /// Already tokenized: ids and Hugging Face labels (-100 = not trained, otherwise the id itself).
    case tokenized(ids: [Int32], labels: [Int32])

    /// The forms a line may take, for error messages.
    public static let formsHelp = "expected one of: {\"instruction\", \"output\"[, \"input\", \"system\"]} (alpaca), "
        + "{\"messages\": [{\"role\", \"content\"}, …]} (chat), {\"prompt\", \"completion\"}, "
        + "or {\"input_ids\", \"labels\"} (tokenized)"

    /// Parses one JSON line. The error text names the offending field (the caller adds the line number).
    public static func parse(_ line: [UInt8]) throws(TrainerError) -> TrainingRecord {
        let value: JSONValue
        do { value = try JSONParser.parse(line) } catch { throw TrainerError("invalid JSON: \(error.description)") }
        guard let object = value.objectValue else { throw TrainerError("a line must be a JSON object, found \(value.typeName)") }

        func string(_ key: String, required: Bool) throws(TrainerError) -> String? {
            guard let v = object[key], !v.isNull else {
                if required { throw TrainerError("missing \"\(key)\"") }
                return nil
            }
            guard let s = v.stringValue else { throw TrainerError("\"\(key)\" must be a string, found \(v.typeName)") }
            return s
        }

        if let messages = object["messages"] {
            guard let list = messages.arrayValue else { throw TrainerError("\"messages\" must be an array, found \(messages.typeName)") }
            var turns: [ChatTurn] = []
            for (i, m) in list.enumerated() {
                guard let o = m.objectValue else { throw TrainerError("messages[\(i)] must be an object, found \(m.typeName)") }
                guard let role = o["role"]?.stringValue else { throw TrainerError("messages[\(i)] lacks a string \"role\"") }
                guard ["system", "user", "assistant"].contains(role) else {
                    throw TrainerError("messages[\(i)] has role \"\(role)\"; expected system, user or assistant")
                }
                guard let content = o["content"]?.stringValue else {
                    throw TrainerError("messages[\(i)] lacks a string \"content\"")
                }
                turns.append(ChatTurn(role, content))
            }
            return .conversation(turns)
        }
        if object["instruction"] != nil || object["output"] != nil {
            let instruction = try string("instruction", required: true)!
            let output = try string("output", required: true)!
            let input = try string("input", required: false) ?? ""
            var turns: [ChatTurn] = []
            if let system = try string("system", required: false), !system.isEmpty { turns.append(ChatTurn("system", system)) }
            turns.append(ChatTurn("user", input.isEmpty ? instruction : instruction + "\n\n" + input))
            turns.append(ChatTurn("assistant", output))
            return .conversation(turns)
        }
        if object["prompt"] != nil || object["completion"] != nil {
            let prompt = try string("prompt", required: true)!
            let completion = try string("completion", required: true)!
            return .conversation([ChatTurn("user", prompt), ChatTurn("assistant", completion)])
        }
        if let idsValue = object["input_ids"] {
            func ints(_ key: String, _ v: JSONValue?) throws(TrainerError) -> [Int32] {
                guard let list = v?.arrayValue else { throw TrainerError("\"\(key)\" must be an array of integers") }
                var out: [Int32] = []
                for x in list {
                    guard let i = x.intValue, let i32 = Int32(exactly: i) else {
                        throw TrainerError("\"\(key)\" holds \(x), not a 32-bit integer")
                    }
                    out.append(i32)
                }
                return out
            }
            let ids = try ints("input_ids", idsValue)
            let labels = try ints("labels", object["labels"])
            guard labels.count == ids.count else {
                throw TrainerError("\"labels\" has \(labels.count) entries for \(ids.count) \"input_ids\"")
            }
            for (i, (id, label)) in zip(ids, labels).enumerated() where label != -100 && label != id {
                throw TrainerError("labels[\(i)] is \(label) but input_ids[\(i)] is \(id); labels are unshifted (-100 or the id)")
            }
            return .tokenized(ids: ids, labels: labels)
        }
        throw TrainerError("unknown record form (keys: \(object.keys.joined(separator: ", "))); \(formsHelp)")
    }
}
