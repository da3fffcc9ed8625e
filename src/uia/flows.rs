//! Pure flow logic: is an operation complete, and what does the 401 challenge say.

use serde_json::{Map, Value, json};

/// A flow: the stages that, all completed, authorise the operation.
pub type Flow = Vec<String>;

/// Whether the completed stages cover every stage of at least one flow.
pub fn is_satisfied(flows: &[Flow], completed: &[String]) -> bool {
    flows
        .iter()
        .any(|flow| flow.iter().all(|stage| completed.contains(stage)))
}

/// Whether `stage` appears in any flow.
pub fn offers(flows: &[Flow], stage: &str) -> bool {
    flows.iter().flatten().any(|offered| offered == stage)
}

/// A stage failure to report inside the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageFailure {
    /// Matrix error code, e.g. `M_FORBIDDEN`.
    pub errcode: &'static str,
    /// Human-readable explanation.
    pub error: String,
}

/// The 401 body of the spec's User-Interactive Authentication API.
pub fn challenge(
    flows: &[Flow],
    params: Map<String, Value>,
    session: &str,
    completed: &[String],
    failure: Option<&StageFailure>,
) -> Value {
    let flows: Vec<Value> = flows
        .iter()
        .map(|stages| json!({ "stages": stages }))
        .collect();
    let mut body = json!({
        "flows": flows,
        "params": params,
        "session": session,
        "completed": completed,
    });
    if let (Some(failure), Some(object)) = (failure, body.as_object_mut()) {
        object.insert("errcode".into(), failure.errcode.into());
        object.insert("error".into(), failure.error.clone().into());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows() -> Vec<Flow> {
        vec![vec!["a".into(), "b".into()], vec!["c".into()]]
    }

    #[test]
    fn satisfied_when_any_flow_is_complete() {
        assert!(!is_satisfied(&flows(), &[]));
        assert!(!is_satisfied(&flows(), &["a".into()]));
        assert!(is_satisfied(&flows(), &["b".into(), "a".into()]));
        assert!(is_satisfied(&flows(), &["c".into()]));
    }

    #[test]
    fn challenge_carries_failure() {
        let failure = StageFailure {
            errcode: "M_FORBIDDEN",
            error: "nope".into(),
        };
        let body = challenge(&flows(), Map::new(), "s", &["a".into()], Some(&failure));
        assert_eq!(body["flows"][0]["stages"], json!(["a", "b"]));
        assert_eq!(body["session"], "s");
        assert_eq!(body["completed"], json!(["a"]));
        assert_eq!(body["errcode"], "M_FORBIDDEN");
    }
}
