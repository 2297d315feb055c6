//! The edge between the wire and the domain: prost messages become validated domain values
//! through `TryFrom` (naming the bad field, never repeating its value), and domain values and
//! answers become messages again. The tonic adapter (`grpc.rs`) and the campaign file loader
//! use these; no rule lives here.

use chrono::{DateTime, Utc};
use platform::clock::{from_timestamp, to_timestamp};
use platform::ids::{PersonKey, format_iso_date, parse_iso_date};
use proto::scheduling::v1 as pb;

use crate::domain::{
    AgeBand, BookingWindow, Campaign, CampaignId, CampaignName, CampaignParts, CancellationLead,
    Channel, ChannelSet, DateRange, RuleId, SupplyStep, Window, WindowKind, WindowKindSpec,
    WindowSpec, storable_instant,
};
use crate::eligibility::{Applicant, Approach, EligibilityDecision};
use crate::error::SchedulingError;

impl TryFrom<&pb::CheckEligibilityRequest> for Applicant {
    type Error = SchedulingError;

    fn try_from(request: &pb::CheckEligibilityRequest) -> Result<Self, SchedulingError> {
        Ok(Self {
            birth_date: parse_iso_date("birth_date", &request.birth_date)?,
            person_key: PersonKey::parse(&request.person_key)?,
        })
    }
}

impl TryFrom<&pb::CheckEligibilityRequest> for Approach {
    type Error = SchedulingError;

    fn try_from(request: &pb::CheckEligibilityRequest) -> Result<Self, SchedulingError> {
        Ok(Self {
            channel: channel_or_web("channel", request.channel)?,
            proxy: request.proxy,
        })
    }
}

/// The channel of a request; unspecified means web.
pub fn channel_or_web(field: &str, raw: i32) -> Result<Channel, SchedulingError> {
    Ok(optional_channel(field, raw)?.unwrap_or(Channel::Web))
}

/// `None` for unspecified.
pub fn optional_channel(field: &str, raw: i32) -> Result<Option<Channel>, SchedulingError> {
    match pb::Channel::try_from(raw) {
        Ok(pb::Channel::Unspecified) => Ok(None),
        Ok(pb::Channel::Web) => Ok(Some(Channel::Web)),
        Ok(pb::Channel::CallCenter) => Ok(Some(Channel::CallCenter)),
        Err(_) => Err(SchedulingError::invalid(format!(
            "{field} is not a known channel"
        ))),
    }
}

impl From<Channel> for pb::Channel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Web => Self::Web,
            Channel::CallCenter => Self::CallCenter,
        }
    }
}

impl TryFrom<pb::Campaign> for Campaign {
    type Error = SchedulingError;

    fn try_from(message: pb::Campaign) -> Result<Self, SchedulingError> {
        Self::try_from(&message)
    }
}

impl TryFrom<&pb::Campaign> for Campaign {
    type Error = SchedulingError;

    fn try_from(message: &pb::Campaign) -> Result<Self, SchedulingError> {
        let born = DateRange::new(
            "born",
            parse_iso_date("born_from", &message.born_from)?,
            parse_iso_date("born_to", &message.born_to)?,
        )?;
        // The booking period is read only for a campaign without windows; with windows it is
        // derived from them.
        let booking = if message.windows.is_empty() {
            Some(BookingWindow::new(
                required_instant("booking_opens_at", message.booking_opens_at.as_ref())?,
                required_instant("booking_closes_at", message.booking_closes_at.as_ref())?,
            )?)
        } else {
            None
        };
        let vaccination = DateRange::new(
            "vaccination",
            parse_iso_date("vaccination_from", &message.vaccination_from)?,
            parse_iso_date("vaccination_to", &message.vaccination_to)?,
        )?;
        let bands = message
            .bands
            .iter()
            .enumerate()
            .map(|(index, band)| band_from_wire(index, band))
            .collect::<Result<Vec<_>, _>>()?;
        let windows = message
            .windows
            .iter()
            .enumerate()
            .map(|(index, window)| window_from_wire(index, window))
            .collect::<Result<Vec<_>, _>>()?;
        Campaign::assemble(CampaignParts {
            id: CampaignId::parse(&message.id).map_err(|err| err.for_field("id"))?,
            name: CampaignName::parse(&message.name)?,
            born,
            vaccination,
            proxy_allowed: message.proxy_allowed,
            proxy_deadline: optional_instant("proxy_deadline", message.proxy_deadline.as_ref())?,
            proxy_max_per_booker: message.proxy_max_per_booker,
            modification_allowed_from: optional_instant(
                "modification_allowed_from",
                message.modification_allowed_from.as_ref(),
            )?,
            cancellation_closes_days_before: CancellationLead::days(i64::from(
                message.cancellation_closes_days_before,
            ))?,
            bands,
            windows,
            booking,
            version: 0,
        })
    }
}

fn band_from_wire(index: usize, band: &pb::AgeBand) -> Result<AgeBand, SchedulingError> {
    let field = format!("bands[{index}]");
    let born = DateRange::new(
        &format!("{field}.born"),
        parse_iso_date("bands[].born_from", &band.born_from)?,
        parse_iso_date("bands[].born_to", &band.born_to)?,
    )?;
    AgeBand::new(
        &field,
        RuleId::parse(&format!("{field}.id"), &band.id)?,
        &band.name,
        born,
    )
}

fn window_from_wire(index: usize, window: &pb::Window) -> Result<WindowSpec, SchedulingError> {
    let field = |name: &str| format!("windows[{index}].{name}");
    let kind = match pb::WindowKind::try_from(window.kind) {
        Ok(pb::WindowKind::Rotation) => WindowKindSpec::Rotation,
        Ok(pb::WindowKind::Open) => WindowKindSpec::Open,
        Ok(pb::WindowKind::Band) => {
            WindowKindSpec::Band(RuleId::parse(&field("band_id"), &window.band_id)?)
        }
        Ok(pb::WindowKind::Unspecified) | Err(_) => {
            return Err(SchedulingError::invalid(format!(
                "{} must be rotation, band or open",
                field("kind")
            )));
        }
    };
    if !matches!(kind, WindowKindSpec::Band(_)) && !window.band_id.is_empty() {
        return Err(SchedulingError::invalid(format!(
            "{} is only for band windows",
            field("band_id")
        )));
    }
    let channels = window
        .channels
        .iter()
        .map(|raw| {
            optional_channel(&field("channels"), *raw)?.ok_or_else(|| {
                SchedulingError::invalid(format!("{} must not be unspecified", field("channels")))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let channels = ChannelSet::new(channels).map_err(|_| {
        SchedulingError::invalid(format!("{} must not be empty", field("channels")))
    })?;
    let period = BookingWindow::named(
        &field("opens_at"),
        &field("closes_at"),
        required_instant(&field("opens_at"), window.opens_at.as_ref())?,
        required_instant(&field("closes_at"), window.closes_at.as_ref())?,
    )?;
    Ok(WindowSpec {
        id: RuleId::parse(&field("id"), &window.id)?,
        kind,
        period,
        channels,
        supply_share_bp: window.supply_share_bp,
    })
}

impl From<&Window> for pb::Window {
    fn from(window: &Window) -> Self {
        let (kind, band_id, rotation_digit) = match &window.kind {
            WindowKind::Rotation { digit } => (pb::WindowKind::Rotation, String::new(), *digit),
            WindowKind::Band { band, .. } => (pb::WindowKind::Band, band.as_str().to_owned(), 0),
            WindowKind::Open => (pb::WindowKind::Open, String::new(), 0),
        };
        Self {
            id: window.id.as_str().to_owned(),
            kind: kind.into(),
            opens_at: Some(to_timestamp(window.opens_at())),
            closes_at: Some(to_timestamp(window.closes_at())),
            channels: window
                .channels
                .iter()
                .map(|channel| pb::Channel::from(channel).into())
                .collect(),
            band_id,
            supply_share_bp: window.supply_share_bp,
            rotation_digit: u32::from(rotation_digit),
        }
    }
}

impl From<&SupplyStep> for pb::SupplyStep {
    fn from(step: &SupplyStep) -> Self {
        Self {
            at: Some(to_timestamp(step.at)),
            released_bp: step.released_bp,
        }
    }
}

impl From<&Campaign> for pb::Campaign {
    fn from(campaign: &Campaign) -> Self {
        Self {
            id: campaign.id.as_str().to_owned(),
            name: campaign.name.as_str().to_owned(),
            born_from: format_iso_date(campaign.born.first()),
            born_to: format_iso_date(campaign.born.last()),
            booking_opens_at: Some(to_timestamp(campaign.booking.opens_at())),
            booking_closes_at: Some(to_timestamp(campaign.booking.closes_at())),
            vaccination_from: format_iso_date(campaign.vaccination.first()),
            vaccination_to: format_iso_date(campaign.vaccination.last()),
            proxy_allowed: campaign.proxy_allowed,
            proxy_deadline: campaign.proxy_deadline.map(to_timestamp),
            modification_allowed_from: campaign.modification_allowed_from.map(to_timestamp),
            cancellation_closes_days_before: i32::from(
                campaign.cancellation_closes_days_before.as_days(),
            ),
            bands: campaign
                .bands
                .iter()
                .map(|band| pb::AgeBand {
                    id: band.id.as_str().to_owned(),
                    name: band.name.clone(),
                    born_from: format_iso_date(band.born.first()),
                    born_to: format_iso_date(band.born.last()),
                })
                .collect(),
            windows: campaign.windows.iter().map(pb::Window::from).collect(),
            proxy_max_per_booker: campaign.proxy_max_per_booker,
            version: campaign.version,
            supply_release: campaign.supply.iter().map(pb::SupplyStep::from).collect(),
        }
    }
}

impl From<Campaign> for pb::Campaign {
    fn from(campaign: Campaign) -> Self {
        Self::from(&campaign)
    }
}

fn required_instant(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, SchedulingError> {
    optional_instant(field, timestamp)?
        .ok_or_else(|| SchedulingError::invalid(format!("{field} is required")))
}

/// An absent timestamp is `None`; a present but malformed one is an error, never `None`.
fn optional_instant(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, SchedulingError> {
    timestamp
        .map(|timestamp| {
            from_timestamp(timestamp)
                .map(storable_instant)
                .ok_or_else(|| {
                    SchedulingError::invalid(format!("{field} is not a valid timestamp"))
                })
        })
        .transpose()
}

/// The wire answer to an eligibility question.
pub fn eligibility_response(decision: &EligibilityDecision<'_>) -> pb::CheckEligibilityResponse {
    let mut response = pb::CheckEligibilityResponse {
        eligible: decision.is_eligible(),
        reason: decision
            .ineligible
            .map(|reason| reason.as_str().to_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(campaign) = decision.campaign {
        response.campaign_id = campaign.id.as_str().to_owned();
        response.vaccination_from = format_iso_date(campaign.vaccination.first());
        response.vaccination_to = format_iso_date(campaign.vaccination.last());
        response.proxy_deadline = campaign.proxy_deadline.map(to_timestamp);
        response.supply_release = campaign.supply.iter().map(pb::SupplyStep::from).collect();
        response.campaign_version = campaign.version;
        response.campaign = Some(pb::Campaign::from(campaign));
    }
    if let Some(window) = decision.window {
        response.opens_at = Some(to_timestamp(window.opens_at()));
        response.closes_at = Some(to_timestamp(window.closes_at()));
        response.window = Some(pb::Window::from(window));
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use platform::problem::{Problem, ProblemKind};

    fn valid_message() -> pb::Campaign {
        pb::Campaign {
            id: "covid19-18-49".to_owned(),
            name: "18-49".to_owned(),
            born_from: "1972-01-01".to_owned(),
            born_to: "2003-12-31".to_owned(),
            booking_opens_at: Some(prost_types::Timestamp {
                seconds: 1_628_506_800,
                nanos: 0,
            }),
            booking_closes_at: Some(prost_types::Timestamp {
                seconds: 1_631_955_600,
                nanos: 0,
            }),
            vaccination_from: "2021-08-26".to_owned(),
            vaccination_to: "2021-10-02".to_owned(),
            proxy_allowed: false,
            proxy_deadline: None,
            modification_allowed_from: None,
            cancellation_closes_days_before: 2,
            ..Default::default()
        }
    }

    fn rejected_field(message: pb::Campaign) -> String {
        let problem = Problem::from(Campaign::try_from(message).unwrap_err());
        assert_eq!(problem.kind, ProblemKind::InvalidRequest);
        problem.detail
    }

    #[test]
    fn a_valid_message_round_trips() {
        let message = valid_message();
        let campaign = Campaign::try_from(&message).unwrap();
        assert_eq!(campaign.cancellation_closes_days_before.as_days(), 2);
        // A campaign without windows answers with its one open window and the supply it
        // releases, and otherwise exactly what was sent.
        let mut expected = message.clone();
        expected.windows = vec![pb::Window {
            id: "booking".to_owned(),
            kind: pb::WindowKind::Open.into(),
            opens_at: message.booking_opens_at,
            closes_at: message.booking_closes_at,
            channels: vec![pb::Channel::Web.into(), pb::Channel::CallCenter.into()],
            band_id: String::new(),
            supply_share_bp: 10_000,
            rotation_digit: 0,
        }];
        expected.supply_release = vec![pb::SupplyStep {
            at: message.booking_opens_at,
            released_bp: 10_000,
        }];
        let answered = pb::Campaign::from(&campaign);
        assert_eq!(answered, expected);
        // Sending the answer back changes nothing.
        assert_eq!(Campaign::try_from(&answered).unwrap(), campaign);
    }

    fn with_windows() -> pb::Campaign {
        let mut message = valid_message();
        let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        message.bands = vec![pb::AgeBand {
            id: "36-49".to_owned(),
            name: "ages 36-49".to_owned(),
            born_from: "1972-01-01".to_owned(),
            born_to: "1985-12-31".to_owned(),
        }];
        message.windows = vec![
            pb::Window {
                id: "rotation-09".to_owned(),
                kind: pb::WindowKind::Rotation.into(),
                // 9 Aug 2021 20:00 KST .. 10 Aug 18:00 KST.
                opens_at: ts(1_628_506_800),
                closes_at: ts(1_628_586_000),
                channels: vec![pb::Channel::Web.into()],
                supply_share_bp: 6_000,
                ..Default::default()
            },
            pb::Window {
                id: "catch-up".to_owned(),
                kind: pb::WindowKind::Band.into(),
                band_id: "36-49".to_owned(),
                opens_at: ts(1_628_593_200),
                closes_at: ts(1_628_672_400),
                channels: vec![pb::Channel::Web.into(), pb::Channel::CallCenter.into()],
                supply_share_bp: 4_000,
                ..Default::default()
            },
        ];
        message
    }

    #[test]
    fn windows_round_trip_and_derive_the_period_digit_and_supply() {
        let message = with_windows();
        let campaign = Campaign::try_from(&message).unwrap();
        let answered = pb::Campaign::from(&campaign);
        assert_eq!(answered.windows[0].rotation_digit, 9);
        assert_eq!(answered.booking_opens_at, message.windows[0].opens_at);
        assert_eq!(answered.booking_closes_at, message.windows[1].closes_at);
        assert_eq!(
            answered
                .supply_release
                .iter()
                .map(|step| step.released_bp)
                .collect::<Vec<_>>(),
            vec![6_000, 10_000]
        );
        assert_eq!(answered.bands, message.bands);
        assert_eq!(Campaign::try_from(&answered).unwrap(), campaign);
    }

    #[test]
    fn malformed_rules_are_named() {
        type Spoil = Box<dyn Fn(&mut pb::Campaign)>;
        let cases: Vec<(&str, Spoil)> = vec![
            ("windows[0].kind", Box::new(|m| m.windows[0].kind = 0)),
            ("windows[0].kind", Box::new(|m| m.windows[0].kind = 9)),
            (
                "windows[0].channels",
                Box::new(|m| m.windows[0].channels.clear()),
            ),
            (
                "windows[0].channels",
                Box::new(|m| m.windows[0].channels = vec![7]),
            ),
            (
                "windows[0].channels",
                Box::new(|m| m.windows[0].channels = vec![0]),
            ),
            (
                "windows[0].opens_at",
                Box::new(|m| m.windows[0].opens_at = None),
            ),
            (
                "windows[0].opens_at",
                Box::new(|m| m.windows[0].closes_at = m.windows[0].opens_at),
            ),
            (
                "windows[0].id",
                Box::new(|m| m.windows[0].id = "Bad".to_owned()),
            ),
            (
                "windows[1].id",
                Box::new(|m| m.windows[1].id = "rotation-09".to_owned()),
            ),
            (
                "windows[1].band_id",
                Box::new(|m| m.windows[1].band_id = "18-35".to_owned()),
            ),
            (
                "windows[0].band_id",
                Box::new(|m| m.windows[0].band_id = "36-49".to_owned()),
            ),
            (
                "windows[].supply_share_bp",
                Box::new(|m| m.windows[1].supply_share_bp = 3_000),
            ),
            (
                "windows[0].supply_share_bp",
                Box::new(|m| m.windows[0].supply_share_bp = 10_001),
            ),
            (
                "bands[0].born_from",
                Box::new(|m| m.bands[0].born_from = "1960-01-01".to_owned()),
            ),
            ("bands[0].id", Box::new(|m| m.bands[0].id = String::new())),
        ];
        for (field, spoil) in cases {
            let mut message = with_windows();
            spoil(&mut message);
            let detail = rejected_field(message);
            assert!(detail.starts_with(field), "{field}: {detail}");
        }
    }

    #[test]
    fn unknown_channels_in_questions_are_refused() {
        let request = pb::CheckEligibilityRequest {
            birth_date: "1990-05-05".to_owned(),
            person_key: "pk".to_owned(),
            channel: 9,
            ..Default::default()
        };
        assert!(Approach::try_from(&request).is_err());
        let request = pb::CheckEligibilityRequest {
            channel: 0,
            proxy: true,
            ..request
        };
        assert_eq!(
            Approach::try_from(&request).unwrap(),
            Approach {
                channel: Channel::Web,
                proxy: true
            }
        );
    }

    #[test]
    fn zero_cancellation_lead_means_zero() {
        let mut message = valid_message();
        message.cancellation_closes_days_before = 0;
        let campaign = Campaign::try_from(message).unwrap();
        assert_eq!(campaign.cancellation_closes_days_before.as_days(), 0);
    }

    #[test]
    fn malformed_fields_are_named() {
        type Spoil = Box<dyn Fn(&mut pb::Campaign)>;
        let cases: Vec<(&str, Spoil)> = vec![
            ("id", Box::new(|m| m.id = "Bad_Id".to_owned())),
            ("id", Box::new(|m| m.id = "-leading-dash".to_owned())),
            ("id", Box::new(|m| m.id = "a".repeat(65))),
            ("id", Box::new(|m| m.id.clear())),
            ("name", Box::new(|m| m.name = "  ".to_owned())),
            ("name", Box::new(|m| m.name = "가".repeat(201))),
            (
                "born_from",
                Box::new(|m| m.born_from = "1972-1-1".to_owned()),
            ),
            ("born_to", Box::new(|m| m.born_to = "2003-02-30".to_owned())),
            (
                "born_from",
                Box::new(|m| m.born_from = "2004-01-01".to_owned()),
            ),
            ("booking_opens_at", Box::new(|m| m.booking_opens_at = None)),
            (
                "booking_closes_at",
                Box::new(|m| m.booking_closes_at = None),
            ),
            (
                "booking_opens_at",
                Box::new(|m| m.booking_closes_at = m.booking_opens_at),
            ),
            (
                "vaccination_from",
                Box::new(|m| m.vaccination_from = "2021-10-03".to_owned()),
            ),
            (
                "proxy_deadline",
                Box::new(|m| {
                    m.proxy_deadline = Some(prost_types::Timestamp {
                        seconds: 0,
                        nanos: -1,
                    })
                }),
            ),
            (
                "cancellation_closes_days_before",
                Box::new(|m| m.cancellation_closes_days_before = 31),
            ),
            (
                "cancellation_closes_days_before",
                Box::new(|m| m.cancellation_closes_days_before = -1),
            ),
        ];
        for (field, spoil) in cases {
            let mut message = valid_message();
            spoil(&mut message);
            let detail = rejected_field(message);
            assert!(detail.starts_with(field), "{field}: {detail}");
        }
    }

    #[test]
    fn person_keys_follow_the_shared_limits() {
        let request = |person_key: String| pb::CheckEligibilityRequest {
            campaign_id: String::new(),
            birth_date: "1990-05-05".to_owned(),
            person_key,
            ..Default::default()
        };
        assert!(Applicant::try_from(&request("pk-4f1c_Z".to_owned())).is_ok());
        assert!(Applicant::try_from(&request("k".repeat(128))).is_ok());
        for bad in [String::new(), "k".repeat(129), "a b".to_owned()] {
            let problem = Problem::from(Applicant::try_from(&request(bad)).unwrap_err());
            assert_eq!(problem.kind, ProblemKind::InvalidRequest);
            assert!(
                problem.detail.starts_with("person_key"),
                "{}",
                problem.detail
            );
        }
        let mut bad_date = request("pk".to_owned());
        bad_date.birth_date = "1990-5-5".to_owned();
        let problem = Problem::from(Applicant::try_from(&bad_date).unwrap_err());
        assert!(
            problem.detail.starts_with("birth_date"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn longest_allowed_id_and_name_are_accepted() {
        let mut message = valid_message();
        message.id = format!("9{}", "-".repeat(63));
        message.name = "가".repeat(200);
        assert!(Campaign::try_from(message).is_ok());
    }

    #[test]
    fn instants_keep_microseconds_only() {
        let mut message = valid_message();
        message.booking_opens_at = Some(prost_types::Timestamp {
            seconds: 1_628_506_800,
            nanos: 123_456_789,
        });
        let campaign = Campaign::try_from(message).unwrap();
        assert_eq!(
            campaign.booking.opens_at().timestamp_subsec_nanos(),
            123_456_000
        );
    }
}
