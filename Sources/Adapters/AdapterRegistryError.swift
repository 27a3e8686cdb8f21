/// Why the registry refused a request. Each message names the adapter or path at fault.
public enum AdapterRegistryError: Error, CustomStringConvertible, Sendable {
    /// No adapter of that name is registered (or it was removed).
    case notFound(name: String)
    case alreadyRegistered(name: String)
    case invalidName(String, reason: String)
    /// The path, once `..` and symlinks are resolved, lies outside every configured root.
    case outsideRoots(path: String, resolved: String, roots: [String])
    case noSuchPath(String)
    /// A configured root is unusable.
    case badRoot(String, reason: String)
    /// A negative resident budget.
    case badBudget(Int)
    /// The adapter alone needs more memory than the whole resident budget.
    case overBudget(name: String, bytes: Int, budget: Int)
    /// Loading, validation or conversion failed.
    case invalidAdapter(AdapterError)

    public var description: String {
        switch self {
        case .notFound(let name):
            "adapter '\(name)' is not registered"
        case .alreadyRegistered(let name):
            "adapter '\(name)' is already registered (remove it first to replace it)"
        case .invalidName(let name, let reason):
            "invalid adapter name '\(name)': \(reason)"
        case .outsideRoots(let path, let resolved, let roots):
            (resolved == path ? "adapter path '\(path)'" : "adapter path '\(path)' (resolved to '\(resolved)')")
                + " is outside the adapter roots \(roots); refusing to load it"
        case .noSuchPath(let path):
            "adapter path '\(path)': no such file or folder"
        case .badRoot(let root, let reason):
            "adapter root '\(root)': \(reason)"
        case .badBudget(let bytes):
            "adapter resident budget \(bytes) bytes is negative"
        case .overBudget(let name, let bytes, let budget):
            "adapter '\(name)' needs \(bytes) bytes resident, more than the whole budget of \(budget) bytes"
        case .invalidAdapter(let error):
            error.description
        }
    }

    /// True for `.notFound` (an HTTP layer maps it to 404).
    public var isNotFound: Bool {
        if case .notFound = self { return true }
        return false
    }
}
