//! The text formats of rich output: base64 for `data:` URLs, HTML escaping, evcxr's MIME
//! blocks. A leaf: anything that displays itself (an image, a figure, a report) uses it.

/// Standard base64 (RFC 4648) of `bytes`, for `data:` URLs.
///
/// ```
/// assert_eq!(neuroscope::display::base64(b"Man"), "TWFu");
/// assert_eq!(neuroscope::display::base64(b"Ma"), "TWE=");
/// ```
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Escapes text for HTML.
///
/// ```
/// assert_eq!(neuroscope::display::escape("a<b & c"), "a&lt;b &amp; c");
/// ```
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Prints `content` as an evcxr rich-output block of type `mime`.
pub(crate) fn evcxr_emit(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}
