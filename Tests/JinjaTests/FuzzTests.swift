import Foundation
import TestSupport
import XCTest
@testable import Jinja

/// Random and mutated template text never crashes: it compiles and renders, or fails with a
/// `TemplateError`. Deterministic (fixed seed), so a failure is reproducible.
final class FuzzTests: XCTestCase {
    /// SplitMix64: small, fast, and the same on every platform.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let fragments = [
        "{%", "%}", "{{", "}}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", "|", ".", ",", ":",
        " if ", " else ", " elif ", " endif ", " for ", " in ", " endfor ", " set ", " endset ", " macro ", " endmacro ",
        " call ", " endcall ", " raw ", " endraw ", " break ", " continue ", " not ", " and ", " or ", " is ", "defined",
        "loop.index", "messages", "message", "ns", "namespace(x=1)", "range(5)", "tojson", "trim", "length", "join",
        "selectattr", "map", "raise_exception('x')", "\\", "\n", "  ", "\t", "é", "日本", "😀", "0", "1.5", "-1", "**",
        "//", "%", "~", "==", "[::-1]", "[1:]", "caller()", "none", "true", "x", "=", "\u{0}",
    ]

    private func context() -> [String: Value] {
        [
            "messages": [["role": "system", "content": "sys"], ["role": "user", "content": "hi"],
                         ["role": "assistant", "content": "yo"]],
            "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
        ]
    }

    private func exercise(_ source: String, _ options: TemplateOptions) {
        do {
            let template = try Template(source, options: options)
            _ = try template.render(context())
        } catch {
            // A TemplateError is the expected way to fail; anything else cannot be thrown (typed throws).
            XCTAssertFalse(error.message.isEmpty, "empty error message for \(source.debugDescription)")
        }
    }

    func testMutatedReferenceTemplatesNeverCrash() throws {
        let folder = TestPaths.referenceFile("chat_templates/templates")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".jinja") }.sorted()
        XCTAssertEqual(names.count, 8)
        let corpus = try names.map { Array(try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8).unicodeScalars) }
        var rng = SeededGenerator(state: 20_250_101)
        let options = TemplateOptions(maxSteps: 50_000, maxOutputBytes: 1 << 16)
        for _ in 0..<1500 {
            var text = corpus[Int.random(in: 0..<corpus.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                guard !text.isEmpty else { break }
                let at = Int.random(in: 0..<text.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:
                    text.removeSubrange(at..<min(text.count, at + Int.random(in: 1...20, using: &rng)))
                case 1:
                    let fragment = Self.fragments[Int.random(in: 0..<Self.fragments.count, using: &rng)]
                    text.insert(contentsOf: fragment.unicodeScalars, at: at)
                case 2:
                    let end = min(text.count, at + Int.random(in: 1...40, using: &rng))
                    let copy = Array(text[at..<end])
                    text.insert(contentsOf: copy, at: Int.random(in: 0...text.count, using: &rng))
                default:
                    text[at] = Unicode.Scalar(UInt8.random(in: 32...126, using: &rng))
                }
            }
            exercise(PythonString.string(text), options)
        }
    }

    func testRandomFragmentSoupNeverCrashes() {
        var rng = SeededGenerator(state: 42)
        let options = TemplateOptions(maxSteps: 20_000, maxOutputBytes: 1 << 16)
        for _ in 0..<3000 {
            let count = Int.random(in: 1...30, using: &rng)
            let source = (0..<count).map { _ in Self.fragments[Int.random(in: 0..<Self.fragments.count, using: &rng)] }.joined()
            exercise(source, options)
        }
    }

    func testRandomLoopsEndAtTheStepLimit() {
        var rng = SeededGenerator(state: 7)
        let options = TemplateOptions(maxSteps: 100_000)
        for _ in 0..<20 {
            let depth = Int.random(in: 2...4, using: &rng)
            let width = Int.random(in: 200...5000, using: &rng)
            var source = ""
            for level in 0..<depth { source += "{% for i\(level) in range(\(width)) %}" }
            source += "{{ i0 }}"
            for _ in 0..<depth { source += "{% endfor %}" }
            // width^depth >= 40_000 iterations, each costing several steps: always past 100_000.
            XCTAssertEqual(templateError(source, options: options)?.kind, .limit, source)
        }
    }
}
