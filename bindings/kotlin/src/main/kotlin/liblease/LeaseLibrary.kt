package liblease

/** The library as a whole. */
object LeaseLibrary {
    /** The version of lease.h this binding was written against. */
    const val HEADER_VERSION = "0.2.0"

    /** The version of the liblease actually loaded, such as "0.2.0". */
    val version: String
        get() = LeaseNative.lease_version().utf8()

    /**
     * Stops the library's background thread ("liblease") and waits for it to end; a later call that
     * needs it starts it again. Call it before unloading the library, or at the end of a program
     * checked for leaks. Not from a callback.
     *
     * @throws LeaseException.Misuse while a guard is still held or an asynchronous acquisition has
     *   not been called back yet (the thread keeps running).
     */
    fun shutdown() = checkStatus(LeaseNative.lease_shutdown())
}
