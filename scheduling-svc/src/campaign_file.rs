//! Campaign files: the YAML an operator writes (and the dev demo ships, deploy/campaigns/) to
//! describe campaigns as data, read into the wire messages `UpsertCampaign` takes. Every
//! campaign read is also checked with the service's own validation ([`Campaign::try_from`]), so
//! `vaxbook campaigns apply` refuses a bad file before anything is sent. Unknown keys are
//! refused (a typo must not silently drop a rule). The format is described in the crate's
//! README.

use chrono::{DateTime, FixedOffset};
use proto::scheduling::v1 as pb;
use serde::Deserialize;

use crate::domain::Campaign;
use crate::error::SchedulingError;

/// Why a campaign file cannot be used. Messages name the campaign and field, never more.
#[derive(Debug, thiserror::Error)]
pub enum CampaignFileError {
    #[error("the campaign file is not valid YAML of the expected shape: {0}")]
    Syntax(String),
    #[error("campaigns[{index}] ({id}): {detail}")]
    Campaign {
        index: usize,
        id: String,
        detail: String,
    },
    #[error("the campaign file has no campaigns")]
    Empty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    campaigns: Vec<FileCampaign>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DateSpan {
    from: String,
    to: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProxy {
    #[serde(default)]
    allowed: bool,
    #[serde(default)]
    deadline: Option<String>,
    #[serde(default)]
    max_per_booker: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBand {
    id: String,
    #[serde(default)]
    name: String,
    born: DateSpan,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWindow {
    id: String,
    kind: String,
    #[serde(default)]
    band: Option<String>,
    opens_at: String,
    closes_at: String,
    channels: Vec<String>,
    /// A percentage of every slot's capacity, "10%" or "12.5%".
    #[serde(default)]
    supply_share: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCampaign {
    id: String,
    name: String,
    born: DateSpan,
    vaccination: DateSpan,
    #[serde(default)]
    proxy: FileProxy,
    #[serde(default)]
    modification_allowed_from: Option<String>,
    cancellation_closes_days_before: i32,
    #[serde(default)]
    bands: Vec<FileBand>,
    windows: Vec<FileWindow>,
}

/// Reads every campaign of a campaign file, each checked as the service would.
pub fn parse(text: &str) -> Result<Vec<pb::Campaign>, CampaignFileError> {
    let doc: FileDoc =
        serde_norway::from_str(text).map_err(|err| CampaignFileError::Syntax(err.to_string()))?;
    if doc.campaigns.is_empty() {
        return Err(CampaignFileError::Empty);
    }
    doc.campaigns
        .into_iter()
        .enumerate()
        .map(|(index, campaign)| {
            let id = campaign.id.clone();
            let failed = |detail: String| CampaignFileError::Campaign {
                index,
                id: id.clone(),
                detail,
            };
            let message = to_message(campaign).map_err(failed)?;
            Campaign::try_from(&message).map_err(|err| failed(err.to_string()))?;
            Ok(message)
        })
        .collect()
}

fn to_message(campaign: FileCampaign) -> Result<pb::Campaign, String> {
    let windows = campaign
        .windows
        .into_iter()
        .enumerate()
        .map(|(index, window)| window_message(index, window))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pb::Campaign {
        id: campaign.id,
        name: campaign.name,
        born_from: campaign.born.from,
        born_to: campaign.born.to,
        vaccination_from: campaign.vaccination.from,
        vaccination_to: campaign.vaccination.to,
        proxy_allowed: campaign.proxy.allowed,
        proxy_deadline: campaign
            .proxy
            .deadline
            .as_deref()
            .map(|raw| instant("proxy.deadline", raw))
            .transpose()?,
        proxy_max_per_booker: campaign.proxy.max_per_booker,
        modification_allowed_from: campaign
            .modification_allowed_from
            .as_deref()
            .map(|raw| instant("modification_allowed_from", raw))
            .transpose()?,
        cancellation_closes_days_before: campaign.cancellation_closes_days_before,
        bands: campaign
            .bands
            .into_iter()
            .map(|band| pb::AgeBand {
                id: band.id,
                name: band.name,
                born_from: band.born.from,
                born_to: band.born.to,
            })
            .collect(),
        windows,
        ..Default::default()
    })
}

fn window_message(index: usize, window: FileWindow) -> Result<pb::Window, String> {
    let field = |name: &str| format!("windows[{index}].{name}");
    let kind = match window.kind.as_str() {
        "rotation" => pb::WindowKind::Rotation,
        "band" => pb::WindowKind::Band,
        "open" => pb::WindowKind::Open,
        _ => return Err(format!("{} must be rotation, band or open", field("kind"))),
    };
    let channels = window
        .channels
        .iter()
        .map(|channel| match channel.as_str() {
            "web" => Ok(pb::Channel::Web.into()),
            "call_center" => Ok(pb::Channel::CallCenter.into()),
            _ => Err(format!("{} must be web or call_center", field("channels"))),
        })
        .collect::<Result<Vec<i32>, _>>()?;
    Ok(pb::Window {
        id: window.id,
        kind: kind.into(),
        band_id: window.band.unwrap_or_default(),
        opens_at: Some(instant(&field("opens_at"), &window.opens_at)?),
        closes_at: Some(instant(&field("closes_at"), &window.closes_at)?),
        channels,
        supply_share_bp: window
            .supply_share
            .as_deref()
            .map(|raw| {
                percent_to_bp(raw).ok_or_else(|| {
                    format!(
                        "{} must be a percentage like 10% or 12.5%",
                        field("supply_share")
                    )
                })
            })
            .transpose()?
            .unwrap_or(0),
        rotation_digit: 0,
    })
}

/// An RFC 3339 instant with its offset ("2021-08-09T20:00:00+09:00").
fn instant(field: &str, raw: &str) -> Result<prost_types::Timestamp, String> {
    DateTime::<FixedOffset>::parse_from_rfc3339(raw.trim())
        .map(|instant| platform::clock::to_timestamp(instant.to_utc()))
        .map_err(|_| format!("{field} must be an RFC 3339 instant with its offset"))
}

/// "10%" -> 1000, "12.5%" -> 1250, "0.01%" -> 1; at most two decimals, at most 100%.
fn percent_to_bp(raw: &str) -> Option<u32> {
    let number = raw.trim().strip_suffix('%')?.trim();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.len() > 2 {
        return None;
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let fraction: u32 = format!("{fraction:0<2}").parse().ok()?;
    let bp = whole.checked_mul(100)?.checked_add(fraction)?;
    (bp <= 10_000).then_some(bp)
}

/// Reads and checks one campaign file into domain campaigns (for tests and the dev run).
pub fn parse_campaigns(text: &str) -> Result<Vec<Campaign>, CampaignFileError> {
    parse(text)?
        .iter()
        .enumerate()
        .map(|(index, message)| {
            Campaign::try_from(message).map_err(|err: SchedulingError| {
                CampaignFileError::Campaign {
                    index,
                    id: message.id.clone(),
                    detail: err.to_string(),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_basis_points() {
        assert_eq!(percent_to_bp("10%"), Some(1_000));
        assert_eq!(percent_to_bp("12.5%"), Some(1_250));
        assert_eq!(percent_to_bp(" 0.01 %"), Some(1));
        assert_eq!(percent_to_bp("100%"), Some(10_000));
        for bad in ["100.01%", "10", "%", "1.234%", "-1%", "1e2%", ".5%"] {
            assert_eq!(percent_to_bp(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_fields_are_refused() {
        let base = "campaigns:\n  - id: c1\n    name: one\n    born: {from: 1972-01-01, to: 2003-12-31}\n    vaccination: {from: 2021-08-26, to: 2021-10-02}\n    cancellation_closes_days_before: 2\n    windows:\n      - {id: all, kind: open, opens_at: \"2021-08-09T20:00:00+09:00\", closes_at: \"2021-09-18T18:00:00+09:00\", channels: [web], supply_share: 100%}\n";
        assert_eq!(parse(base).map(|c| c.len()).ok(), Some(1));
        let typo = base.replace("cancellation_closes_days_before", "cancelation_days");
        assert!(matches!(parse(&typo), Err(CampaignFileError::Syntax(_))));
        let half = base.replace("100%", "50%");
        let Err(CampaignFileError::Campaign { detail, .. }) = parse(&half) else {
            panic!("a share short of the whole was accepted");
        };
        assert!(detail.contains("supply_share_bp"), "{detail}");
        let naive = base.replace("2021-08-09T20:00:00+09:00", "2021-08-09T20:00:00");
        let Err(CampaignFileError::Campaign { detail, .. }) = parse(&naive) else {
            panic!("an instant without offset was accepted");
        };
        assert!(detail.starts_with("windows[0].opens_at"), "{detail}");
        assert!(matches!(
            parse("campaigns: []"),
            Err(CampaignFileError::Empty)
        ));
    }
}
