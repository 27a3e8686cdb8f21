import XCTest
@testable import Jinja
final class JinjaSmokeTests: XCTestCase { func testNothing() {} }
