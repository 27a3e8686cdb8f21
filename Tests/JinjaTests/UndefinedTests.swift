import XCTest
@testable import Jinja

/// Jinja's default `Undefined`: prints as nothing, iterates as empty, fails when used further.
final class UndefinedTests: XCTestCase {
    func testUndefinedPrintsAsEmptyAndIsFalse() throws {
        XCTAssertEqual(try render("[{{ nothing }}]{% if nothing %}yes{% else %}no{% endif %}"), "[]no")
        XCTAssertEqual(try render("{{ 'a' ~ nothing ~ 'b' }}"), "ab")
    }

    func testMissingKeysAndAttributesAreUndefined() throws {
        let message: Value = ["role": "user"]
        XCTAssertEqual(try render("{{ m.content is defined }} {{ m['content'] is defined }} {{ m.role }}", ["m": message]),
                       "False False user")
        XCTAssertEqual(try render("{{ m.role.nope is defined }}", ["m": message]), "False")
    }

    func testAttributeOfUndefinedFailsNamingTheExpression() {
        let error = templateError("{{ messages[0].role }}", ["messages": []])
        XCTAssertEqual(error?.kind, .runtime)
        XCTAssertEqual(error?.message, "'messages[0]' is undefined")
        XCTAssertEqual(error?.line, 1)
        XCTAssertEqual(error?.column, 4)
    }

    func testArithmeticWithUndefinedFails() {
        XCTAssertEqual(templateError("{{ nothing + 1 }}")?.kind, .runtime)
        XCTAssertEqual(templateError("{{ 'x' + nothing }}")?.kind, .runtime)
    }

    func testCallingUndefinedFails() {
        let error = templateError("{{ nothing() }}")
        XCTAssertEqual(error?.kind, .runtime)
        XCTAssertEqual(error?.message, "'nothing' is undefined")
    }

    func testDefaultAndDefinedTests() throws {
        XCTAssertEqual(try render("{{ nothing | default('d') }} {{ nothing is defined }} {{ nothing is undefined }}"), "d False True")
    }
}
