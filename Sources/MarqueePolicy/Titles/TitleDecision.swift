/// What the catalog's rules decide for one request of a title's media.
public enum TitleDecision: Equatable, Sendable {
    case allowed
    /// The rules have not arrived from the catalog yet (503, retry).
    case rulesNotLoaded
    /// The catalog does not know the title (404).
    case noSuchTitle
    /// Known but not published: draft, withdrawn... (404).
    case notPublished
    /// Before `available_from` (403).
    case notYetAvailable
    /// At or after `available_until` (403).
    case noLongerAvailable
    /// The title's countries exclude the client (451).
    case geoDenied(GeoDenial)
}
