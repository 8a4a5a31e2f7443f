//! Whether a signature's `created` and `expires` fit the verifier's clock.

use crate::{AuthError, MAX_CLOCK_SKEW_SECONDS, MAX_SIGNATURE_LIFETIME_SECONDS};

/// Checks that `created` is within [`MAX_CLOCK_SKEW_SECONDS`] of `now_seconds`, either way.
pub(crate) fn check_created(created: u64, now_seconds: u64) -> Result<(), AuthError> {
    if created.saturating_add(MAX_CLOCK_SKEW_SECONDS) < now_seconds {
        return Err(AuthError::StaleSignature {
            created,
            now: now_seconds,
            max_skew_seconds: MAX_CLOCK_SKEW_SECONDS,
        });
    }
    if created > now_seconds.saturating_add(MAX_CLOCK_SKEW_SECONDS) {
        return Err(AuthError::FutureSignature {
            created,
            now: now_seconds,
            max_skew_seconds: MAX_CLOCK_SKEW_SECONDS,
        });
    }
    Ok(())
}

/// Checks `created` and, when present, `expires` against `now_seconds`.
pub(crate) fn check_lifetime(created: u64, expires: Option<u64>, now_seconds: u64) -> Result<(), AuthError> {
    check_created(created, now_seconds)?;
    let Some(expires) = expires else { return Ok(()) };
    if expires <= created || expires - created > MAX_SIGNATURE_LIFETIME_SECONDS {
        return Err(AuthError::BadExpires {
            created,
            expires,
            max_lifetime_seconds: MAX_SIGNATURE_LIFETIME_SECONDS,
        });
    }
    if expires <= now_seconds {
        return Err(AuthError::ExpiredSignature { expires, now: now_seconds });
    }
    Ok(())
}

/// The last second at which a signature created at `created` is still fresh.
pub(crate) fn last_fresh_second(created: u64) -> u64 {
    created.saturating_add(MAX_CLOCK_SKEW_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_225_600;

    #[test]
    fn created_is_accepted_exactly_up_to_the_skew_either_way() {
        assert_eq!(check_created(NOW, NOW), Ok(()));
        assert_eq!(check_created(NOW - MAX_CLOCK_SKEW_SECONDS, NOW), Ok(()));
        assert_eq!(check_created(NOW + MAX_CLOCK_SKEW_SECONDS, NOW), Ok(()));
        assert!(matches!(
            check_created(NOW - MAX_CLOCK_SKEW_SECONDS - 1, NOW),
            Err(AuthError::StaleSignature { created, now: NOW, max_skew_seconds: MAX_CLOCK_SKEW_SECONDS })
                if created == NOW - MAX_CLOCK_SKEW_SECONDS - 1
        ));
        assert!(matches!(
            check_created(NOW + MAX_CLOCK_SKEW_SECONDS + 1, NOW),
            Err(AuthError::FutureSignature { .. })
        ));
        assert_eq!(check_created(0, 0), Ok(()));
        assert!(matches!(check_created(u64::MAX, NOW), Err(AuthError::FutureSignature { .. })));
        assert!(matches!(check_created(0, u64::MAX), Err(AuthError::StaleSignature { .. })));
    }

    #[test]
    fn expires_must_be_later_bounded_and_not_passed() {
        assert_eq!(check_lifetime(NOW, Some(NOW + 1), NOW), Ok(()));
        assert_eq!(check_lifetime(NOW, Some(NOW + MAX_SIGNATURE_LIFETIME_SECONDS), NOW), Ok(()));
        assert!(matches!(check_lifetime(NOW, Some(NOW), NOW), Err(AuthError::BadExpires { .. })));
        assert!(matches!(
            check_lifetime(NOW, Some(NOW + MAX_SIGNATURE_LIFETIME_SECONDS + 1), NOW),
            Err(AuthError::BadExpires { .. })
        ));
        assert_eq!(
            check_lifetime(NOW - 10, Some(NOW), NOW),
            Err(AuthError::ExpiredSignature { expires: NOW, now: NOW })
        );
    }
}
