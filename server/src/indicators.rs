//! The programme's indicators, computed from the merged state.
//!
//! - attendance at awareness sessions by topic, sex, side of the border and
//!   month;
//! - unique women traders reached by any session;
//! - survey interviews per enumerator per day;
//! - the share of traders reporting harassment, by border post.
//!
//! One pass over sessions, attendance and submissions. The result depends
//! only on the merged state, so callers cache it under the log's head
//! sequence ([`ProjectLog::head`]) and recompute only after a sync
//! changed something.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use mpaka_core::schema::SubmissionStatus;
use mpaka_core::schema::names::{attendance, session, submission};
use mpaka_core::{Collection, EntityId};
use serde::Serialize;
use serde_json::Value;

use crate::review::Survivors;
use crate::storage::{ProjectLog, StorageError};

/// The survey question whose answer is "harassed at the border in the
/// last 3 months" (`yes` / `no` / `refused`), as the shipped trader survey
/// names it.
pub const HARASSMENT_QUESTION: &str = "harassment";
/// The survey question naming the border post of an interview.
pub const BORDER_POST_QUESTION: &str = "border_post";

/// Every indicator, as of one head sequence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Indicators {
    /// The log head they were computed at.
    pub head: u64,
    /// Attendance counts by (topic, sex, side, month `YYYY-MM`).
    pub attendance: Vec<AttendanceCount>,
    /// Registered women traders who attended any session, each counted
    /// once (merged records count as one).
    pub women_traders_reached: u64,
    /// Women walk-ins who said they trade across the border (not in the
    /// registry, so they cannot be told apart across sessions: counted per
    /// attendance).
    pub women_trader_walk_ins: u64,
    /// Complete interviews by (enumerator, day `YYYY-MM-DD`).
    pub surveys_per_enumerator_day: Vec<EnumeratorDay>,
    /// Harassment reports by border post.
    pub harassment: Vec<HarassmentShare>,
}

/// One cell of the attendance table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttendanceCount {
    /// Session topic.
    pub topic: String,
    /// Attendee's sex.
    pub sex: String,
    /// Side of the border the session was held on.
    pub side: String,
    /// Month of the session.
    pub month: String,
    /// Attendees.
    pub count: u64,
}

/// Interviews of one enumerator on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnumeratorDay {
    /// User name.
    pub enumerator: String,
    /// Day the interview started (server-corrected when known).
    pub day: String,
    /// Complete interviews.
    pub count: u64,
}

/// Harassment at one border post.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HarassmentShare {
    /// Border post.
    pub border_post: String,
    /// Traders who reported harassment in any of their interviews.
    pub reported: u64,
    /// Traders who answered yes or no (refusals are left out of the share).
    pub answered: u64,
    /// Traders who preferred not to say, in every interview.
    pub refused: u64,
    /// `reported / answered`, or 0.
    pub share: f64,
}

/// Computes every indicator from `log`'s merged state, reading only the
/// fields it counts ([`ProjectLog::scan_fields`]).
pub fn compute(log: &dyn ProjectLog) -> Result<Indicators, StorageError> {
    let head = log.head()?;
    let survivors = Survivors::read(log)?;
    let survivor = |id: &Value| -> Option<EntityId> { Some(survivors.of(id.as_str()?.parse().ok()?)) };
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();

    // Sessions: few (a handful a day), held in memory.
    let mut sessions: HashMap<EntityId, (String, String, String)> = HashMap::new();
    log.scan_fields(
        Collection::AwarenessSessions,
        &[session::TOPIC, session::SIDE, session::DATE],
        &mut |id, v| {
            let month = v[2].as_str().and_then(|d| d.get(..7)).unwrap_or("").to_owned();
            sessions.insert(id, (text(&v[0]), text(&v[1]), month));
            Ok(())
        },
    )?;

    let mut attendance: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
    let mut women: HashSet<EntityId> = HashSet::new();
    let mut walk_ins = 0;
    let fields = [
        attendance::SESSION_ID,
        attendance::SEX,
        attendance::TRADER_ID,
        attendance::IS_TRADER,
    ];
    log.scan_fields(Collection::Attendance, &fields, &mut |_, v| {
        let session = v[0].as_str().and_then(|s| s.parse::<EntityId>().ok());
        let Some((topic, side, month)) = session.and_then(|id| sessions.get(&id)) else {
            return Ok(()); // its session was deleted
        };
        let sex = v[1].as_str().unwrap_or("");
        *attendance
            .entry((topic.clone(), sex.into(), side.clone(), month.clone()))
            .or_default() += 1;
        if sex == "female" {
            match survivor(&v[2]) {
                Some(trader) => {
                    women.insert(trader);
                }
                None if v[3] == Value::Bool(true) => walk_ins += 1,
                None => {}
            }
        }
        Ok(())
    })?;

    let mut per_day: BTreeMap<(String, String), u64> = BTreeMap::new();
    // Per border post: registered traders' answers (any yes counts), and
    // interviews without a registered trader, each its own trader.
    #[derive(Default)]
    struct Post {
        traders: HashMap<EntityId, (bool, bool)>,
        anonymous: (u64, u64, u64),
    }
    let mut posts: BTreeMap<String, Post> = BTreeMap::new();
    let harassment = format!("answers/{HARASSMENT_QUESTION}");
    let post_answer = format!("answers/{BORDER_POST_QUESTION}");
    let fields = [
        submission::STATUS,
        submission::STARTED_AT_SERVER,
        submission::STARTED_AT,
        submission::ENUMERATOR,
        submission::TRADER_ID,
        harassment.as_str(),
        post_answer.as_str(),
    ];
    log.scan_fields(Collection::Submissions, &fields, &mut |_, v| {
        if v[0].as_str() != Some(SubmissionStatus::Complete.code()) {
            return Ok(());
        }
        let started = v[1].as_str().filter(|t| !t.is_empty()).or(v[2].as_str()).unwrap_or("");
        let day = started.get(..10).unwrap_or("").to_owned();
        *per_day.entry((text(&v[3]), day)).or_default() += 1;
        let Some(answer) = v[5].as_str().filter(|a| !a.is_empty()) else {
            return Ok(());
        };
        let post = v[6].as_str().filter(|p| !p.is_empty()).unwrap_or("unknown");
        let post = posts.entry(post.to_owned()).or_default();
        match survivor(&v[4]) {
            Some(trader) => {
                let seen = post.traders.entry(trader).or_default();
                seen.0 |= answer == "yes";
                seen.1 |= answer == "yes" || answer == "no";
            }
            None => match answer {
                "yes" => {
                    post.anonymous.0 += 1;
                    post.anonymous.1 += 1;
                }
                "no" => post.anonymous.1 += 1,
                _ => post.anonymous.2 += 1,
            },
        }
        Ok(())
    })?;

    Ok(Indicators {
        head,
        attendance: attendance
            .into_iter()
            .map(|((topic, sex, side, month), count)| AttendanceCount {
                topic,
                sex,
                side,
                month,
                count,
            })
            .collect(),
        women_traders_reached: women.len() as u64,
        women_trader_walk_ins: walk_ins,
        surveys_per_enumerator_day: per_day
            .into_iter()
            .map(|((enumerator, day), count)| EnumeratorDay { enumerator, day, count })
            .collect(),
        harassment: posts
            .into_iter()
            .map(|(border_post, post)| {
                let reported = post.traders.values().filter(|t| t.0).count() as u64 + post.anonymous.0;
                let answered = post.traders.values().filter(|t| t.1).count() as u64 + post.anonymous.1;
                let refused = post.traders.values().filter(|t| !t.1).count() as u64 + post.anonymous.2;
                HarassmentShare {
                    border_post,
                    reported,
                    answered,
                    refused,
                    share: if answered == 0 {
                        0.0
                    } else {
                        reported as f64 / answered as f64
                    },
                }
            })
            .collect(),
    })
}

impl Indicators {
    /// Every indicator as one long CSV table (UTF-8 with BOM): one row per
    /// value, its dimensions in their own columns, ready for a pivot table.
    pub fn write_csv(&self, w: &mut impl Write) -> std::io::Result<()> {
        use crate::export::Cell;
        // Dimensions are answers (a border post may be free text in another
        // form): every line goes through the export's CSV writer, quoted and
        // with formulas defused.
        let line = |w: &mut dyn Write, indicator: &str, dims: [&str; 7], value: Cell| {
            let mut cells: Vec<Cell> = vec![Cell::Text(indicator.to_owned())];
            cells.extend(dims.iter().map(|d| {
                if d.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text((*d).to_owned())
                }
            }));
            cells.push(value);
            crate::export::csv::write_row(&mut *w, &cells)
        };
        w.write_all("\u{feff}".as_bytes())?;
        w.write_all(b"indicator,topic,sex,side,month,enumerator,day,border_post,value\r\n")?;
        for a in &self.attendance {
            let dims = [a.topic.as_str(), &a.sex, &a.side, &a.month, "", "", ""];
            line(w, "attendance", dims, Cell::Integer(a.count as i64))?;
        }
        let women = ["", "female", "", "", "", "", ""];
        line(
            w,
            "women_traders_reached",
            women,
            Cell::Integer(self.women_traders_reached as i64),
        )?;
        line(
            w,
            "women_trader_walk_ins",
            women,
            Cell::Integer(self.women_trader_walk_ins as i64),
        )?;
        for d in &self.surveys_per_enumerator_day {
            let dims = ["", "", "", "", d.enumerator.as_str(), &d.day, ""];
            line(w, "surveys", dims, Cell::Integer(d.count as i64))?;
        }
        for h in &self.harassment {
            let dims = ["", "", "", "", "", "", h.border_post.as_str()];
            line(w, "harassment_reported", dims, Cell::Integer(h.reported as i64))?;
            line(w, "harassment_answered", dims, Cell::Integer(h.answered as i64))?;
            line(w, "harassment_refused", dims, Cell::Integer(h.refused as i64))?;
            line(w, "harassment_share", dims, Cell::Text(format!("{:.4}", h.share)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mpaka_core::form::Environment;
    use mpaka_core::sample::{self, trader_interview};
    use mpaka_core::{Attendee, Fields, Store, StoreOptions};
    use serde_json::json;

    use super::*;

    #[test]
    fn indicators_count_what_the_merged_state_holds() {
        let store = Store::open_in_memory(StoreOptions::default()).unwrap();
        let traders: Vec<EntityId> = (0..3).map(|_| EntityId::random()).collect();
        for (n, t) in traders.iter().enumerate() {
            store.save(Collection::Traders, *t, sample::trader(n as u64)).unwrap();
        }
        // Trader 1 is trader 0, merged.
        let mark = Fields::from([("merged_into".to_owned(), json!(traders[0].to_string()))]);
        store.save(Collection::Traders, traders[1], mark).unwrap();
        let session = |topic: &str, side: &str, date: &str| {
            let id = EntityId::random();
            let fields = serde_json::from_value(json!({"topic": topic, "date": date, "border_post": "rusizi_2",
                "side": side, "facilitator": "enum01"}))
            .unwrap();
            store.save(Collection::AwarenessSessions, id, fields).unwrap();
            id
        };
        let hiv = session("hiv_aids", "drc", "2026-11-03");
        let ebola = session("ebola", "rwanda", "2026-12-01");
        let attend = |s: EntityId, who: Attendee, sex: &str, is_trader: bool| {
            let fields = serde_json::from_value(json!({"sex": sex, "is_trader": is_trader})).unwrap();
            store.register_attendance(s, &who, fields).unwrap();
        };
        attend(hiv, Attendee::Trader(traders[0]), "female", true);
        attend(ebola, Attendee::Trader(traders[1]), "female", true); // the same woman
        attend(hiv, Attendee::Trader(traders[2]), "male", true);
        attend(
            hiv,
            Attendee::WalkIn {
                name_or_code: "w-1".into(),
            },
            "female",
            true,
        );
        attend(
            ebola,
            Attendee::WalkIn {
                name_or_code: "w-2".into(),
            },
            "female",
            false,
        );

        let form = sample::trader_survey();
        let env = |user: &str| Environment {
            now: chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00+02:00").unwrap(),
            device_id: "tecno-1".into(),
            username: user.into(),
            language: "English (en)".into(),
        };
        // n = 0 and 5 report harassment (n % 5 == 0); border post by n / 7.
        for n in 0..6 {
            let trader = if n < 2 { Some(traders[n as usize]) } else { None };
            let user = if n % 2 == 0 { "enum01" } else { "enum02" };
            trader_interview(&form, env(user), trader, n)
                .unwrap()
                .finalize(&store)
                .unwrap()
                .unwrap();
        }

        let i = compute(&store).unwrap();
        assert_eq!(i.head, store.last_seq().unwrap());
        let count = |topic: &str, sex: &str| -> u64 {
            i.attendance
                .iter()
                .filter(|a| a.topic == topic && a.sex == sex)
                .map(|a| a.count)
                .sum()
        };
        assert_eq!(
            (
                count("hiv_aids", "female"),
                count("hiv_aids", "male"),
                count("ebola", "female")
            ),
            (2, 1, 2)
        );
        assert!(
            i.attendance
                .iter()
                .any(|a| a.topic == "ebola" && a.side == "rwanda" && a.month == "2026-12")
        );
        assert_eq!(i.women_traders_reached, 1, "a merged record is one woman");
        assert_eq!(i.women_trader_walk_ins, 1, "only walk-ins who trade");
        let day_total: u64 = i.surveys_per_enumerator_day.iter().map(|d| d.count).sum();
        assert_eq!(day_total, 6);
        assert!(
            i.surveys_per_enumerator_day
                .iter()
                .any(|d| d.enumerator == "enum02" && d.count == 3)
        );
        // Traders 0 and 1 are one (n=0 yes, n=1 no -> reported); n=2..5 anonymous, n=5 yes.
        let post = &i.harassment.iter().find(|h| h.border_post == "rusizi_2").unwrap();
        assert_eq!((post.reported, post.answered), (2, 5));
        assert!((post.share - 0.4).abs() < 1e-9);

        let mut csv = Vec::new();
        i.write_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.contains("women_traders_reached,,female,,,,,,1\r\n"), "{csv}");
        assert!(csv.contains("harassment_share,,,,,,,rusizi_2,0.4000\r\n"), "{csv}");
        // A dimension that is an answer is quoted and defused.
        let mut hostile = i.clone();
        hostile.harassment[0].border_post = "=HYPERLINK(\"x\")\r\nfake,row".into();
        let mut out = Vec::new();
        hostile.write_csv(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("\"'=HYPERLINK(\"\"x\"\")\r\nfake,row\""), "{out}");
        assert!(!out.contains("\r\nfake,row,"), "no line of its own");
    }
}
