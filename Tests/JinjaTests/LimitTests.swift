import XCTest
@testable import Jinja

/// Templates cannot run, allocate or nest without bound: every such template ends in a `.limit` error.
final class LimitTests: XCTestCase {
    func testNestedHugeLoopsHitTheStepLimit() {
        let error = templateError("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
        XCTAssertEqual(error?.kind, .limit)
        XCTAssertEqual(error?.message, "template exceeded the limit of 1000000 evaluation steps")
    }

    func testStepLimitIsConfigurable() {
        let options = TemplateOptions(maxSteps: 500)
        XCTAssertEqual(templateError("{% for i in range(1000) %}{% endfor %}", options: options)?.kind, .limit)
        XCTAssertNil(templateError("{% for i in range(100) %}{% endfor %}", options: options))
    }

    func testHugeRangeFailsBeforeAllocating() {
        XCTAssertEqual(templateError("{{ range(1000000000000) | length }}")?.kind, .limit)
    }

    func testStringDoublingIsStopped() {
        let source = "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
        XCTAssertEqual(templateError(source)?.kind, .limit)
        XCTAssertEqual(templateError("{{ 'x' * 1000000000000 }}")?.kind, .limit)
        XCTAssertEqual(templateError("{{ [1] * 1000000000000 }}")?.kind, .limit)
    }

    func testOutputSizeLimit() {
        let options = TemplateOptions(maxOutputBytes: 1000)
        let error = templateError("{% for i in range(100) %}0123456789abcdef{% endfor %}", options: options)
        XCTAssertEqual(error?.kind, .limit)
        XCTAssertEqual(error?.message, "template output exceeded the limit of 1000 bytes")
        XCTAssertNil(templateError("{% for i in range(10) %}0123456789abcdef{% endfor %}", options: options))
    }

    func testDeepNestingFailsCleanly() {
        for source in [
            "{{ " + String(repeating: "(", count: 100_000) + "1" + String(repeating: ")", count: 100_000) + " }}",
            "{{ " + String(repeating: "[", count: 100_000) + " }}",
            "{{ " + String(repeating: "not ", count: 100_000) + "1 }}",
            "{{ " + String(repeating: "-", count: 100_000) + "1 }}",
            String(repeating: "{% if true %}", count: 10_000) + String(repeating: "{% endif %}", count: 10_000),
        ] {
            let error = templateError(source)
            XCTAssertNotNil(error, String(source.prefix(20)))
            XCTAssertTrue(error?.kind == .limit || error?.kind == .syntax, "\(String(describing: error))")
        }
    }

    func testDeepJSONInTojsonFailsCleanly() throws {
        var value: Value = 1
        for _ in 0..<1000 { value = [value] }
        XCTAssertEqual(templateError("{{ v | tojson }}", ["v": value])?.kind, .limit)
    }
}

extension LimitTests {
    /// The nesting limits keep recursion shallow enough for a thread with a 256 KiB stack (release build).
    func testDeepNestingOnASmallStack() {
        let done = expectation(description: "rendered on a small stack")
        let thread = Thread {
            for source in [
                "{{ " + String(repeating: "(", count: 1000) + "1" + String(repeating: ")", count: 1000) + " }}",
                "{{ " + String(repeating: "[", count: 1000) + " }}",
                String(repeating: "{% if true %}", count: 1000) + String(repeating: "{% endif %}", count: 1000),
                "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            ] {
                XCTAssertNotNil(templateError(source))
            }
            done.fulfill()
        }
        thread.stackSize = 256 << 10
        thread.start()
        wait(for: [done], timeout: 60)
    }
}
