import XCTest
@testable import Jinja

/// Errors carry a kind, a message naming the offending thing, and a 1-based line and column
/// (columns count Unicode scalars).
final class ErrorTests: XCTestCase {
    private func compileError(_ source: String) -> TemplateError? {
        do {
            _ = try Template(source)
            return nil
        } catch {
            return error
        }
    }

    func testSyntaxErrorPosition() {
        let error = compileError("{% if x %}\n{{ 1 + }}{% endif %}")
        XCTAssertEqual(error?.kind, .syntax)
        XCTAssertEqual(error?.line, 2)
        XCTAssertEqual(error?.column, 8)
        XCTAssertEqual(error?.message, "unexpected end of print statement")
    }

    func testUnknownFilterIsFoundWhenCompiling() {
        let error = compileError("line1\n  {{ x | frobnicate }}")
        XCTAssertEqual(error?.kind, .unknownName)
        XCTAssertEqual(error?.message, "no filter named 'frobnicate'")
        XCTAssertEqual(error?.line, 2)
        XCTAssertEqual(error?.column, 10)
        XCTAssertEqual(error?.description, "template unknownName error at line 2, column 10: no filter named 'frobnicate'")
    }

    func testUnknownFilterInsideAnUnusedBranchStillFails() {
        XCTAssertEqual(compileError("{% if false %}{{ x | nope }}{% endif %}")?.kind, .unknownName)
    }

    func testUnknownTestIsFoundWhenCompiling() {
        let error = compileError("{{ x is frob }}")
        XCTAssertEqual(error?.kind, .unknownName)
        XCTAssertEqual(error?.column, 9)
    }

    func testColumnsCountUnicodeScalars() {
        XCTAssertEqual(compileError("é{{ 1 | nope }}")?.column, 9)
    }

    func testUnclosedConstructs() {
        let loop = compileError("{% for x in y %}body")
        XCTAssertEqual(loop?.kind, .syntax)
        XCTAssertEqual(loop?.message, "unexpected end of template; looking for 'else' or 'endfor'")
        let string = compileError("{{ 'abc }}")
        XCTAssertEqual(string?.message, "unterminated string")
        XCTAssertEqual(string?.column, 4)
        XCTAssertEqual(compileError("{# never closed")?.message, "missing end of comment tag")
        XCTAssertEqual(compileError("{{ x ")?.message, "missing end of print tag '}}'")
    }

    func testUnknownAndMisplacedTags() {
        XCTAssertEqual(compileError("ab\n{% frob %}")?.message, "unknown tag 'frob'")
        XCTAssertEqual(compileError("ab\n{% frob %}")?.line, 2)
        XCTAssertEqual(compileError("{% endif %}")?.message, "unexpected 'endif'")
        XCTAssertEqual(compileError("{% break %}")?.message, "'break' outside of a loop")
    }

    func testRuntimeErrorPosition() {
        let error = templateError("\n\n{{ 1 / 0 }}")
        XCTAssertEqual(error?.kind, .runtime)
        XCTAssertEqual(error?.message, "division by zero")
        XCTAssertEqual(error?.line, 3)
        XCTAssertEqual(error?.column, 6)
    }

    func testUndefinedOperandIsNamed() {
        let error = templateError("{% for m in ms %}{{ m.content + '!' }}{% endfor %}", ["ms": [["role": "user"]]])
        XCTAssertEqual(error?.message, "'m.content' is undefined")
        XCTAssertEqual(error?.column, 21)
    }

    func testRaisedErrorPosition() {
        let error = templateError("x\n  {{ raise_exception('bad ' ~ 1) }}")
        XCTAssertEqual(error?.kind, .raised)
        XCTAssertEqual(error?.message, "bad 1")
        XCTAssertEqual(error?.line, 2)
    }
}
