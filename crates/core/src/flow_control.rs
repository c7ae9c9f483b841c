//! Flow-control management use cases (`/v2/flowControl`, `/v2/globalParallelism`): read
//! a key's state and send it commands. Admission owns the state; this parses requests.

use crate::Services;
use crate::error::{Error, Result};
use crate::flow::{FlowCommand, FlowControlInfo, GlobalParallelism, is_valid_name, parse_period};

/// Checks a flow-control key named in a path.
pub fn check_key(key: &str) -> Result<()> {
    if is_valid_name(key) {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid flow-control key {key:?}: use only alphanumerics, '-', '_' and '.'"
        )))
    }
}

fn unknown(key: &str) -> Error {
    Error::not_found(format!("flow-control key {key:?} not found"))
}

/// `GET /v2/flowControl`: every key, or those whose name contains `search` (any case).
pub async fn list(services: &Services, search: Option<&str>) -> Result<Vec<FlowControlInfo>> {
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    services.admission.flow_keys(search).await
}

/// `GET /v2/flowControl/{key}`; 404 when no message ever used the key.
pub async fn get(services: &Services, key: &str) -> Result<FlowControlInfo> {
    check_key(key)?;
    services
        .admission
        .flow_key(key)
        .await?
        .ok_or_else(|| unknown(key))
}

/// `POST /v2/flowControl/{key}/{action}`; 404 when the key is unknown.
pub async fn command(services: &Services, key: &str, command: FlowCommand) -> Result<()> {
    check_key(key)?;
    if services.admission.flow_command(key, command).await? {
        Ok(())
    } else {
        Err(unknown(key))
    }
}

/// `GET /v2/globalParallelism`.
pub async fn global_parallelism(services: &Services) -> Result<GlobalParallelism> {
    services.admission.global_parallelism().await
}

fn positive(name: &str, value: Option<&str>) -> Result<Option<u32>> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(Error::bad_request(format!(
            "{name} must be a positive integer, got {value:?}"
        ))),
    }
}

fn flag(name: &str, value: Option<&str>) -> Result<bool> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(other) => Err(Error::bad_request(format!(
            "{name} must be true or false, got {other:?}"
        ))),
    }
}

/// The pin command from the query of `/pin`: `parallelism`, `rate`, `period` (seconds,
/// or a duration like `1m`); at least one of them.
pub fn pin(
    parallelism: Option<&str>,
    rate: Option<&str>,
    period: Option<&str>,
) -> Result<FlowCommand> {
    let parallelism = positive("parallelism", parallelism)?;
    let rate = positive("rate", rate)?;
    let period_secs = period.map(parse_period).transpose()?;
    if parallelism.is_none() && rate.is_none() && period_secs.is_none() {
        return Err(Error::bad_request(
            "pin needs at least one of parallelism, rate or period",
        ));
    }
    Ok(FlowCommand::Pin {
        parallelism,
        rate,
        period_secs,
    })
}

/// The unpin command from the query of `/unpin`: `parallelism=true`, `rate=true`.
pub fn unpin(parallelism: Option<&str>, rate: Option<&str>) -> Result<FlowCommand> {
    Ok(FlowCommand::Unpin {
        parallelism: flag("parallelism", parallelism)?,
        rate: flag("rate", rate)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_takes_any_subset_of_positive_values_and_a_period_in_seconds() {
        assert_eq!(
            pin(Some("3"), None, Some("60")).unwrap(),
            FlowCommand::Pin {
                parallelism: Some(3),
                rate: None,
                period_secs: Some(60)
            }
        );
        assert_eq!(
            pin(None, Some("5"), Some("1m")).unwrap(),
            FlowCommand::Pin {
                parallelism: None,
                rate: Some(5),
                period_secs: Some(60)
            }
        );
        for (p, r, s) in [
            (None, None, None),
            (Some("0"), None, None),
            (Some("x"), None, None),
            (None, Some("-1"), None),
            (None, None, Some("0")),
            (None, None, Some("8d")),
        ] {
            assert!(
                matches!(pin(p, r, s), Err(Error::BadRequest(_))),
                "{p:?} {r:?} {s:?}"
            );
        }
    }

    #[test]
    fn unpin_reads_true_and_false_and_refuses_anything_else() {
        assert_eq!(
            unpin(Some("true"), None).unwrap(),
            FlowCommand::Unpin {
                parallelism: true,
                rate: false
            }
        );
        assert_eq!(
            unpin(Some("False"), Some("TRUE")).unwrap(),
            FlowCommand::Unpin {
                parallelism: false,
                rate: true
            }
        );
        assert!(matches!(
            unpin(Some("yes"), None),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn keys_in_paths_allow_only_the_documented_characters() {
        assert!(check_key("tenant-1.jobs_a").is_ok());
        assert!(matches!(check_key("a b"), Err(Error::BadRequest(_))));
    }
}
