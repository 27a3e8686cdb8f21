/// `--explain`: how the first examples are rendered and which tokens the loss covers.
public enum Explain {
    /// Text of the first `count` examples with supervised runs between `open` and `close` markers, plus per-example
    /// counts and the supervision problems found.
    public static func report(_ data: TrainingData, renderer: ConversationRenderer?, count: Int,
                              open: String = "⟦", close: String = "⟧") -> String {
        var out = "Supervised tokens are shown between \(open) and \(close).\n"
        for (k, e) in data.examples.prefix(count).enumerated() {
            let s = e.sequence
            out += "\n── example \(k + 1) (line \(e.line)): \(s.tokens.count) tokens, \(s.supervisedCount) supervised"
            out += " in \(e.spans.count) span(s)\(e.truncated ? ", truncated" : "")\n"
            guard let renderer else {
                out += "   ids: \(s.tokens)\n"
                continue
            }
            var i = 0
            var text = ""
            while i < s.tokens.count {
                let trained = s.supervised[i]
                var j = i
                while j < s.tokens.count && s.supervised[j] == trained { j += 1 }
                let piece = renderer.decode(Array(s.tokens[i..<j]))
                text += trained ? open + piece + close : piece
                i = j
            }
            out += text
            if !text.hasSuffix("\n") { out += "\n" }
        }
        if data.examples.count > count { out += "\n(\(data.examples.count - count) more examples not shown)\n" }
        if !data.problems.isEmpty {
            out += "\nSupervision problems (training would refuse to start):\n"
            for p in data.problems.prefix(20) { out += "  line \(p.line): \(p.message)\n" }
        }
        return out
    }
}
