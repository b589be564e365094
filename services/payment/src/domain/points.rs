//! An amount of points: never negative.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Points(i64);

impl Points {
    pub fn parse(raw: i64) -> Result<Self, String> {
        if raw < 0 {
            Err(format!(
                "an amount of points must not be negative, got {raw}"
            ))
        } else {
            Ok(Self(raw))
        }
    }

    pub fn value(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_charge_is_rejected() {
        assert!(Points::parse(-1).is_err());
    }

    #[test]
    fn zero_points_are_allowed() {
        assert_eq!(Points::parse(0).map(Points::value), Ok(0));
    }
}
