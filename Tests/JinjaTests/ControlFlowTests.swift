import XCTest
@testable import Jinja

/// Loops, loop variables, scoping, namespaces and macros. Expected strings written by hand and
/// checked against jinja2 3.1 with Hugging Face's settings.
final class ControlFlowTests: XCTestCase {
    // MARK: - Loops

    func testLoopVariables() throws {
        let source = "{% for x in 'abc' %}{{ loop.index0 }}{{ loop.index }}{{ loop.revindex }}{{ loop.revindex0 }}"
            + "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"
        XCTAssertEqual(try render(source), "0132TrueFalse3;1221FalseFalse3;2310FalseTrue3;")
    }

    func testForElse() throws {
        XCTAssertEqual(try render("{% for x in [] %}x{% else %}none{% endfor %}"), "none")
        XCTAssertEqual(try render("{% for x in [1, 3] if x is even %}x{% else %}none{% endfor %}"), "none")
        XCTAssertEqual(try render("{% for x in nothing %}x{% else %}empty{% endfor %}"), "empty")
    }

    func testFilteredLoopCountsKeptItems() throws {
        XCTAssertEqual(try render("{% for x in range(6) if x is odd %}{{ x }}/{{ loop.index }}/{{ loop.length }} {% endfor %}"),
                       "1/1/3 3/2/3 5/3/3 ")
    }

    func testBreakAndContinue() throws {
        let source = "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
            + "{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}"
        XCTAssertEqual(try render(source), "0134")
    }

    func testUnpackingAndDictIteration() throws {
        XCTAssertEqual(try render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}"), "a=1 b=2 ")
        XCTAssertEqual(try render("{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}"), "ba")
    }

    func testNestedLoopsHaveTheirOwnLoopVariable() throws {
        XCTAssertEqual(try render("{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }}|{% endfor %}"),
                       "1x2y1|1x2y2|")
    }

    func testLoopCycle() throws {
        XCTAssertEqual(try render("{% for i in range(3) %}{{ loop.cycle('x', 'y') }}{% endfor %}"), "xyx")
    }

    func testPreviousAndNextItem() throws {
        XCTAssertEqual(try render("{% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }} {% endfor %}"),
                       "<1>2 1<2>3 2<3> ")
    }

    // MARK: - Scoping and namespaces

    func testSetInsideLoopDoesNotLeak() throws {
        XCTAssertEqual(try render("{% set x = 1 %}{% for i in range(3) %}{% set x = x + 10 %}{{ x }} {% endfor %}{{ x }}"),
                       "11 11 11 1")
    }

    func testNamespaceCarriesStateOutOfLoops() throws {
        let source = "{% set ns = namespace(n=0, seen=[]) %}{% for m in ['a', 'b', 'a'] %}"
            + "{% if m not in ns.seen %}{% set ns.seen = ns.seen + [m] %}{% endif %}{% set ns.n = ns.n + 1 %}"
            + "{% endfor %}{{ ns.n }} {{ ns.seen }}"
        XCTAssertEqual(try render(source), "3 ['a', 'b']")
        let later = "{% set ns = namespace() %}{% set ns.found = false %}{% for i in [1, 2] %}"
            + "{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}"
        XCTAssertEqual(try render(later), "True")
    }

    func testNamespacesAreNotSharedBetweenRenders() throws {
        let template = try Template("{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}")
        XCTAssertEqual(try template.render([:]), "3")
        XCTAssertEqual(try template.render([:]), "3")
    }

    func testSetInsideIfIsVisibleAfterIt() throws {
        XCTAssertEqual(try render("{% if true %}{% set y = 'in' %}{% endif %}{{ y }}"), "in")
    }

    func testBlockSetAndTupleSet() throws {
        XCTAssertEqual(try render("{% set x | trim %}  padded  {% endset %}[{{ x }}]"), "[padded]")
        XCTAssertEqual(try render("{% set a, b = 'xy' %}{{ b }}{{ a }}"), "yx")
    }

    func testAssigningAttributeOfNonNamespaceFails() {
        XCTAssertEqual(templateError("{% set d = {} %}{% set d.x = 1 %}")?.kind, .runtime)
    }

    // MARK: - Macros

    func testMacroArguments() throws {
        XCTAssertEqual(try render("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, 2) }} {{ m(b=3, a=4) }}"),
                       "1B 12 43")
    }

    func testCallBlock() throws {
        XCTAssertEqual(try render("{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}in{% endcall %}"), "[in]")
    }

    func testMacroDoesNotSeeCallersLoopVariable() throws {
        XCTAssertEqual(try render("{% macro m() %}{{ i is defined }}{% endmacro %}{% for i in [1] %}{{ m() }}{% endfor %}"), "False")
    }

    func testRecursiveMacroHitsDepthLimit() {
        let error = templateError("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
        XCTAssertEqual(error?.kind, .limit)
    }

    // MARK: - Hugging Face globals

    func testRaiseExceptionCarriesTheTemplatesMessage() {
        let error = templateError("{% if messages | length == 0 %}{{ raise_exception('No messages!') }}{% endif %}",
                                  ["messages": []])
        XCTAssertEqual(error?.kind, .raised)
        XCTAssertEqual(error?.message, "No messages!")
        XCTAssertEqual(error?.line, 1)
    }

    func testStrftimeNowFormatsTheCurrentDate() throws {
        let year = Calendar(identifier: .gregorian).component(.year, from: Date())
        let rendered = try render("{{ strftime_now('%Y') }}|{{ strftime_now('%d %b %Y') }}")
        let parts = rendered.split(separator: "|").map(String.init)
        // A render that straddles New Year's midnight may see the next year.
        XCTAssertTrue([String(year), String(year + 1)].contains(parts[0]), rendered)
        XCTAssertTrue(parts[1].hasSuffix(parts[0]), rendered)
        XCTAssertEqual(parts[1].count, 11, rendered)
    }

    func testGenerationBlockRendersItsBody() throws {
        XCTAssertEqual(try render("{% generation %}x{% endgeneration %}"), "x")
    }
}
