//! How a campaign's bands and windows are kept in the `rules` jsonb column: a private, stable
//! JSON shape, read back through the same validation as the wire ([`Campaign::assemble`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    AgeBand, BookingWindow, Channel, ChannelSet, DateRange, RuleId, Window, WindowKindSpec,
    WindowSpec,
};
use crate::error::SchedulingError;

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredRules {
    pub bands: Vec<StoredBand>,
    pub windows: Vec<StoredWindow>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredBand {
    pub id: String,
    pub name: String,
    pub born_from: NaiveDate,
    pub born_to: NaiveDate,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredWindow {
    pub id: String,
    /// rotation, band or open.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band_id: Option<String>,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    /// web, call_center.
    pub channels: Vec<String>,
    pub supply_share_bp: u32,
}

impl StoredRules {
    pub fn of(bands: &[AgeBand], windows: &[Window]) -> Self {
        Self {
            bands: bands
                .iter()
                .map(|band| StoredBand {
                    id: band.id.as_str().to_owned(),
                    name: band.name.clone(),
                    born_from: band.born.first(),
                    born_to: band.born.last(),
                })
                .collect(),
            windows: windows
                .iter()
                .map(|window| {
                    let spec = window.to_spec();
                    let (kind, band_id) = match &spec.kind {
                        WindowKindSpec::Rotation => ("rotation", None),
                        WindowKindSpec::Band(band) => ("band", Some(band.as_str().to_owned())),
                        WindowKindSpec::Open => ("open", None),
                    };
                    StoredWindow {
                        id: spec.id.as_str().to_owned(),
                        kind: kind.to_owned(),
                        band_id,
                        opens_at: spec.period.opens_at(),
                        closes_at: spec.period.closes_at(),
                        channels: spec
                            .channels
                            .iter()
                            .map(|channel| channel.as_str().to_owned())
                            .collect(),
                        supply_share_bp: spec.supply_share_bp,
                    }
                })
                .collect(),
        }
    }

    /// The validated bands and window specs.
    pub fn into_parts(self) -> Result<(Vec<AgeBand>, Vec<WindowSpec>), SchedulingError> {
        let bands = self
            .bands
            .into_iter()
            .map(|band| {
                AgeBand::new(
                    "bands[]",
                    RuleId::parse("bands[].id", &band.id)?,
                    &band.name,
                    DateRange::new("bands[].born", band.born_from, band.born_to)?,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let windows = self
            .windows
            .into_iter()
            .map(|window| {
                let kind = match (window.kind.as_str(), window.band_id) {
                    ("rotation", None) => WindowKindSpec::Rotation,
                    ("open", None) => WindowKindSpec::Open,
                    ("band", Some(band)) => {
                        WindowKindSpec::Band(RuleId::parse("windows[].band_id", &band)?)
                    }
                    _ => return Err(SchedulingError::invalid("windows[].kind is unknown")),
                };
                let channels = window
                    .channels
                    .iter()
                    .map(|name| match name.as_str() {
                        "web" => Ok(Channel::Web),
                        "call_center" => Ok(Channel::CallCenter),
                        _ => Err(SchedulingError::invalid("windows[].channels is unknown")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(WindowSpec {
                    id: RuleId::parse("windows[].id", &window.id)?,
                    kind,
                    period: BookingWindow::named(
                        "windows[].opens_at",
                        "windows[].closes_at",
                        window.opens_at,
                        window.closes_at,
                    )?,
                    channels: ChannelSet::new(channels)?,
                    supply_share_bp: window.supply_share_bp,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((bands, windows))
    }
}
