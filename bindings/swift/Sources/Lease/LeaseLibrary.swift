import CLease

/// The library as a whole.
public enum LeaseLibrary {
    /// The version of lease.h this binding was built against.
    public static let headerVersion: String = LEASE_VERSION_STRING

    /// The version of the liblease actually loaded, such as "0.2.0".
    public static var version: String { String(cString: lease_version()) }

    /// The library's description of a status number, such as "LEASE_BUSY (held by another process)".
    public static func describe(status: UInt32) -> String { String(cString: lease_status_str(status)) }

    /// Stops the library's background thread ("liblease") and waits for it to end; a later call
    /// that needs it starts it again. Call it before unloading the library, or at the end of a
    /// program checked for leaks; not from a callback.
    ///
    /// - Throws: `LeaseError.misuse` while a guard is still held or an asynchronous acquisition has
    ///   not been called back yet (the thread keeps running).
    public static func shutdown() throws {
        try throwIfFailed(lease_shutdown())
    }
}
