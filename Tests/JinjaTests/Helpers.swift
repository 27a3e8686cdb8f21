import XCTest
@testable import Jinja

/// Renders with Hugging Face's options (trim_blocks and lstrip_blocks on).
func render(_ source: String, _ variables: [String: Value] = [:], options: TemplateOptions = .huggingFace) throws -> String {
    try Template(source, options: options).render(variables)
}

/// The error a template fails with, at compile or render time (nil when it renders).
func templateError(_ source: String, _ variables: [String: Value] = [:], options: TemplateOptions = .huggingFace) -> TemplateError? {
    do {
        _ = try Template(source, options: options).render(variables)
        return nil
    } catch {
        return error
    }
}
