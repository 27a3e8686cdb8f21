import XCTest
@testable import Jinja

/// Whitespace control as Hugging Face configures Jinja (trim_blocks, lstrip_blocks). Expected
/// strings were written by hand and checked against jinja2 3.1 with the same settings.
final class WhitespaceTests: XCTestCase {
    func testTrimBlocksDropsNewlineAfterBlockTag() throws {
        XCTAssertEqual(try render("{% if true %}\nyes\n{% endif %}\n"), "yes\n")
    }

    func testLstripBlocksDropsIndentationBeforeBlockTag() throws {
        XCTAssertEqual(try render("  {% if true %}\n  x\n  {% endif %}\n"), "  x\n")
    }

    func testVariableTagsAreNotLstripped() throws {
        XCTAssertEqual(try render("  {{ 'v' }}\n"), "  v")
    }

    func testMinusStripsAllWhitespaceOnItsSide() throws {
        XCTAssertEqual(try render("a  \n {%- if true -%}  \n b {%- endif %}"), "ab")
        XCTAssertEqual(try render("a {{- 'b' -}} c"), "abc")
    }

    func testPlusKeepsIndentation() throws {
        XCTAssertEqual(try render("  {%+ if true %}x{% endif %}"), "  x")
    }

    func testCommentLinesVanish() throws {
        XCTAssertEqual(try render("a\n  {# note #}\nb"), "a\nb")
    }

    func testTagAfterTextOnItsLineIsNotLstripped() throws {
        XCTAssertEqual(try render("a {% if true %}b{% endif %}"), "a b")
    }

    func testSingleTrailingNewlineIsDropped() throws {
        XCTAssertEqual(try render("x\n"), "x")
        XCTAssertEqual(try render("x\n", options: TemplateOptions(keepTrailingNewline: true)), "x\n")
    }

    func testRawBlocks() throws {
        XCTAssertEqual(try render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}")
        // Jinja never trims the newline after `{% raw %}`.
        XCTAssertEqual(try render("{% raw %}\nx{% endraw %}"), "\nx")
    }

    func testNewlinesAreNormalized() throws {
        XCTAssertEqual(try render("a\r\nb"), "a\nb")
    }

    func testJinjaDefaultsKeepBlockWhitespace() throws {
        XCTAssertEqual(try render("  {% if true %}\nx\n  {% endif %}\n", options: .jinjaDefaults), "  \nx\n  ")
    }
}
