import XCTest
@testable import Jinja

/// Filters, tests, methods and operators; each expected string written by hand and checked
/// against jinja2 3.1 with Hugging Face's `tojson`.
final class FilterTests: XCTestCase {
    let messages: Value = [
        ["role": "system", "content": "s"], ["role": "user", "content": "u1"], ["role": "user", "content": "u2"],
    ]

    private func check(_ source: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try render(source, ["msgs": messages]), expected, source, file: file, line: line)
    }

    func testStringFilters() {
        check("{{ '  a b  ' | trim }}|{{ 'xxaxx' | trim('x') }}", "a b|a")
        check("{{ 'Hello' | upper }} {{ 'Hello' | lower }} {{ 'hello wORLD' | title }} {{ 'hello wORLD' | capitalize }}",
              "HELLO hello Hello World Hello world")
        check("{{ 'a-b-a' | replace('a', 'x') }} {{ 'aaa' | replace('a', 'b', 2) }}", "x-b-x bba")
        check("{{ '%s is %d' % ('x', 3) }} {{ 'a\\nb' | indent(2, true) }} {{ 'ab' | center(6) }}|", "x is 3   a\n  b   ab  |")
        check("{{ 'one two' | wordcount }} {{ '<a>' | e }}", "2 &lt;a&gt;")
    }

    func testLengthAndCount() {
        check("{{ 'abc' | length }} {{ [1, 2] | length }} {{ {'a': 1} | count }} {{ nothing | length }}", "3 2 1 0")
    }

    func testToJSONMatchesHuggingFace() {
        // json.dumps(x, ensure_ascii=False): ", " and ": " separators, non-ASCII unescaped.
        check("{{ {'a': 'é', 'n': [1, 2.0, none, true]} | tojson }}", #"{"a": "é", "n": [1, 2.0, null, true]}"#)
        // With an indent the item separator loses its space.
        check("{{ {'a': [1], 'b': {}} | tojson(indent=2) }}", "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}")
        check("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ 'é\"\\n' | tojson(ensure_ascii=true) }}",
              #"{"a": 2, "b": 1} "\u00e9\"\n""#)
    }

    func testToJSONKeepsJSONMemberOrder() throws {
        let tools = try Value(jsonText: #"[{"name": "f", "parameters": {"z": 1, "a": {"type": "string"}}}]"#)
        XCTAssertEqual(try render("{{ tools[0] | tojson }}", ["tools": tools]),
                       #"{"name": "f", "parameters": {"z": 1, "a": {"type": "string"}}}"#)
    }

    func testSequenceFilters() {
        check("{{ [1, 2, 3] | join('-') }} {{ ['a', 'b'] | join }}", "1-2-3 ab")
        check("{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'xyz' | first }}", "3 2 x")
        check("{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ [1, 2, 2, 1] | unique | list }} {{ [1, 2, 3] | sum }} {{ [4, 9, 2] | max }} {{ [4, 9, 2] | min }}",
              "[1, 2, 3] ['A', 'b', 'c'] [1, 2] 6 9 2")
        check("{{ [1, 2] | reverse | list }} {{ 'abc' | reverse }}", "[2, 1] cba")
        check("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ dict(a=1) }} {{ namespace(a=1).a }}", "[0, 1, 2] [1, 3, 5] {'a': 1} 1")
    }

    func testSelectionFilters() {
        check("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}", "u1,u2")
        check("{{ msgs | rejectattr('role', 'eq', 'user') | map(attribute='role') | list }}", "['system']")
        check("{{ [1, 2, 3, 4] | select('even') | list }} {{ [1, 2, 3, 4] | reject('even') | list }} {{ ['a', 'b'] | map('upper') | list }}",
              "[2, 4] [1, 3] ['A', 'B']")
        check("{% for k, v in {'x': 1} | items %}{{ k }}{{ v }}{% endfor %}", "x1")
    }

    func testDefault() {
        check("{{ missing | default('d') }} {{ none | default('d') }} {{ '' | default('d', true) }}", "d None d")
    }

    func testConversions() {
        check("{{ '42' | int + 1 }} {{ 'x' | int }} {{ '2.5' | float }} {{ 3 | string ~ 'x' }}", "43 0 2.5 3x")
        check("{{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ -3 | abs }}", "2.0 3.14 3")
    }

    func testStringMethods() {
        check("{{ ' a '.strip() }}|{{ 'xa'.lstrip('x') }}|{{ 'a\\n'.rstrip() }}|{{ 'a,b,c'.split(',') }}|{{ 'a b'.split() }}",
              "a|a|a|['a', 'b', 'c']|['a', 'b']")
        check("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith('x') }} {{ 'hello'.startswith(('x', 'h')) }}", "True False True")
        check("{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b', 2) }} {{ {'a': 1}.keys() | list }} {{ '{}-{}'.format(1, 'x') }} {{ ', '.join(['a', 'b']) }}",
              "1 2 ['a'] 1-x a, b")
    }

    func testListMutationIsRefusedLikeTheSandbox() {
        XCTAssertEqual(templateError("{% set x = [] %}{{ x.append(1) }}")?.kind, .runtime)
    }

    func testOperatorsAndSlicing() {
        check("{{ [1, 2, 3][::-1] }} {{ [1, 2, 3][1:] }} {{ 'hello'[:-1] }} {{ 'hello'[::2] }}", "[3, 2, 1] [2, 3] hell hlo")
        check("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 8 }} {{ 'a' ~ 1 ~ none }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-5 }}",
              "3 -4 2 3.5 256 a1None 0.30000000000000004 1e+16 1e-05")
        check("{{ 1 < 2 <= 2 }} {{ 'b' in 'abc' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 1 == 1.0 }} {{ 'x' if false }}|{{ 'y' if 0 else 'z' }}",
              "True True True True True |z")
    }

    func testStringLiteralEscapesFollowPython() {
        // Octal, tab, \u and \x escapes; an unknown escape stays as written.
        check(#"{{ 'a\101b\tc\u00e9\x41\q' }}"#, "aAb\tcéA\\q")
    }

    func testTests() {
        check("{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ 1 is number }} {{ 1.5 is integer }} {{ [] is iterable }} {{ 3 is divisibleby 3 }}",
              "False True True True True False True True")
    }

    func testStringsCountCodePointsLikePython() {
        // "é" written as e + combining acute is two code points in Python.
        check("{{ 'e\u{301}' | length }} {{ 'e\u{301}'[0] == 'e' }} {{ 'e\u{301}x'.startswith('e') }}", "2 True True")
    }

    func testIntegerOverflowIsAnError() {
        XCTAssertEqual(templateError("{{ 9223372036854775807 + 1 }}")?.kind, .runtime)
        XCTAssertEqual(templateError("{{ 2 ** 100 }}")?.kind, .runtime)
    }
}
