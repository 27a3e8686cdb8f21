import Foundation
import TestSupport

struct GreedyCase {
    let promptIDs: [Int32]
    let messages: [(String, String)]
    let greedyIDs: [Int32]
}

/// `greedy_cases.json` for one model ("base" or an adapter name).
func greedyCases(_ model: String) throws -> [GreedyCase] {
    guard let root = try TestPaths.loadJSON("greedy_cases.json") as? [String: Any],
          let all = root["cases"] as? [String: Any], let cases = all[model] as? [[String: Any]] else { return [] }
    return cases.map { c in
        GreedyCase(promptIDs: (c["prompt_ids"] as? [NSNumber] ?? []).map(\.int32Value),
                   messages: (c["messages"] as? [[String: String]] ?? []).map { ($0["role"] ?? "", $0["content"] ?? "") },
                   greedyIDs: (c["greedy_ids"] as? [NSNumber] ?? []).map(\.int32Value))
    }
}
