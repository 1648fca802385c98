//! The deployment files stay true: they parse, carry the fields a deployment relies on,
//! and set only environment variables the binary reads.

use serde_json::Value;

fn root(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn json(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root(rel)).unwrap()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(root(rel)).unwrap()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A container definition's `environment`, as (name, value).
fn environment(container: &Value) -> Vec<(&str, &str)> {
    let vars = container["environment"].as_array().unwrap().iter();
    vars.map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap())).collect()
}

fn assert_known(var: &str, file: &str) {
    assert!(concierge::config::env::is_known(var), "{file} sets {var}, which the binary does not read");
}

#[test]
fn ecs_task_definition() {
    let task = json("deploy/ecs/task-definition.json");
    let container = &task["containerDefinitions"][0];
    assert_eq!(container["essential"], true);
    assert_eq!(container["linuxParameters"]["initProcessEnabled"], true);
    assert_eq!(container["healthCheck"]["command"], serde_json::json!(["CMD", "/usr/local/bin/concierge", "health"]));
    assert_eq!(container["logConfiguration"]["logDriver"], "awslogs");
    let env = environment(container);
    for (name, _) in &env {
        assert_known(name, "task-definition.json");
    }
    for secret in container["secrets"].as_array().unwrap() {
        assert_known(secret["name"].as_str().unwrap(), "task-definition.json");
    }
    let grace: f64 = env.iter().find(|(n, _)| *n == "CONCIERGE_DRAIN_GRACE").unwrap().1.parse().unwrap();
    assert!(container["stopTimeout"].as_f64().unwrap() > grace, "stopTimeout must exceed the drain grace");
    let name = env.iter().find(|(n, _)| *n == "SENSU_CLIENT_NAME").unwrap().1;
    assert!(name.contains("{ecs_task_id}"), "one name per task");
    assert_eq!(env.iter().find(|(n, _)| *n == "CONCIERGE_DEREGISTER").unwrap().1, "true");
    let attributes = env.iter().find(|(n, _)| *n == "CONCIERGE_CLIENT_ATTRIBUTES").unwrap().1;
    assert!(serde_json::from_str::<Value>(attributes).unwrap().is_object());
}

#[test]
fn ecs_service_and_scaling_policy() {
    let service = json("deploy/ecs/service.json");
    assert_eq!(service["taskDefinition"], json("deploy/ecs/task-definition.json")["family"]);
    assert!(service["desiredCount"].as_u64().unwrap() >= 2);
    let scaling = json("deploy/ecs/scaling.json");
    let policy = &scaling["scalingPolicy"]["TargetTrackingScalingPolicyConfiguration"];
    let metric = &policy["CustomizedMetricSpecification"];
    assert_eq!(metric["Namespace"], "Concierge");
    // The metric the binary's EMF lines carry.
    let t = concierge::telemetry::Telemetry::new();
    let emf: Value = serde_json::from_str(&t.emf("concierge-probes", "x")).unwrap();
    let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&metric["MetricName"].as_str().unwrap()));
    assert_eq!(metric["Dimensions"][0]["Name"], "Service");
    let task = json("deploy/ecs/task-definition.json");
    let service_dimension = task["containerDefinitions"][0]["environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "CONCIERGE_SERVICE_NAME")
        .map(|e| e["value"].clone())
        .unwrap();
    assert_eq!(metric["Dimensions"][0]["Value"], service_dimension);
    assert!(policy["TargetValue"].as_f64().unwrap() > 0.0 && policy["TargetValue"].as_f64().unwrap() < 1.0);
}

#[test]
fn swarm_stack_and_rules() {
    let stack = yaml("deploy/swarm/stack.yml");
    let service = &stack["services"]["concierge"];
    for (name, _) in service["environment"].as_object().unwrap() {
        assert_known(name, "stack.yml");
    }
    assert!(service["environment"]["SENSU_CLIENT_NAME"].as_str().unwrap().contains("{{.Task.Slot}}"));
    // The broker URL comes from a Swarm secret through RABBITMQ_URL_FILE, not a shell wrapper.
    assert_eq!(service["environment"]["RABBITMQ_URL_FILE"], "/run/secrets/rabbitmq_url");
    assert!(service["entrypoint"].is_null());
    assert!(service["deploy"]["replicas"].as_u64().unwrap() >= 2);
    assert!(service["deploy"]["restart_policy"].is_object() && service["deploy"]["update_config"].is_object());
    assert_eq!(service["healthcheck"]["test"], serde_json::json!(["CMD", "/usr/local/bin/concierge", "health"]));
    let grace: f64 = service["environment"]["CONCIERGE_DRAIN_GRACE"].as_str().unwrap().parse().unwrap();
    let stop: f64 = service["stop_grace_period"].as_str().unwrap().trim_end_matches('s').parse().unwrap();
    assert!(stop > grace);
    let rules = yaml("deploy/swarm/prometheus-rules.yml");
    let exprs: Vec<String> = rules["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    // The rules use figures /metrics really exports.
    let t = concierge::telemetry::Telemetry::new();
    t.slots_used((0, 1), (0, 1));
    let exported = t.render();
    for metric in ["concierge_execution_slots_busy_ratio", "concierge_lag_p95_seconds", "concierge_results_buffered"] {
        assert!(exprs.iter().any(|e| e.contains(metric)), "{metric} unused");
        assert!(
            exported.contains(&format!("\n{metric} ")) || exported.contains(&format!("# TYPE {metric} ")),
            "{metric} not exported"
        );
    }
}

#[test]
fn compose_file() {
    let compose = yaml("deploy/compose.yml");
    let concierge = &compose["services"]["concierge"];
    assert!(compose["services"]["rabbitmq"].is_object());
    assert_eq!(concierge["deploy"]["replicas"], 3);
    for (name, _) in concierge["environment"].as_object().unwrap() {
        assert_known(name, "compose.yml");
    }
    assert!(concierge["environment"]["SENSU_CLIENT_SUBSCRIPTIONS"].as_str().unwrap().starts_with("roundrobin:"));
}

#[test]
fn dockerfile_is_complete() {
    let docker = std::fs::read_to_string(root("Dockerfile")).unwrap();
    for needle in [
        "cargo build --profile dist --locked",
        "ca-certificates",
        "tini",
        "USER 10001",
        "HEALTHCHECK",
        "concierge\", \"health\"",
        "STOPSIGNAL SIGTERM",
        "ENTRYPOINT [\"/usr/bin/tini\", \"--\"",
    ] {
        assert!(docker.contains(needle), "Dockerfile lacks {needle}");
    }
    // Every path the build stage copies exists (`COPY SRC… DEST`; the `prebuilt` stage's
    // target/dist binary is made on the host before an image build).
    for line in docker.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        for path in words[..words.len() - 1].iter().filter(|p| !p.starts_with("target/")) {
            assert!(std::path::Path::new(&root(path)).exists(), "Dockerfile copies missing {path}");
        }
    }
}

#[test]
fn ecs_autoscale_task_and_its_role() {
    let task = json("deploy/ecs/autoscale-task-definition.json");
    assert!(task["taskRoleArn"].as_str().unwrap().contains(":role/"));
    let container = &task["containerDefinitions"][0];
    assert_eq!(container["command"][0], "autoscale");
    let env = environment(container);
    for (name, _) in &env {
        assert_known(name, "autoscale-task-definition.json");
    }
    let value = |n: &str| env.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    assert_eq!(value("CONCIERGE_AUTOSCALE_SERVICE"), json("deploy/ecs/service.json")["serviceName"].as_str());
    assert!(value("CONCIERGE_AUTOSCALE_MIN").is_some() && value("CONCIERGE_AUTOSCALE_MAX").is_some());
    // The role allows what the ECS back end calls, no more.
    let policy = json("deploy/ecs/autoscale-task-role-policy.json");
    let actions = &policy["Statement"][0]["Action"];
    assert_eq!(
        actions,
        &serde_json::json!(["ecs:DescribeServices", "ecs:UpdateService", "ecs:ListTagsForResource", "ecs:TagResource"])
    );
    // The Swarm stack carries the same service, commented out.
    let stack = std::fs::read_to_string(root("deploy/swarm/stack.yml")).unwrap();
    assert!(
        stack.contains("  # autoscale:\n") && stack.contains("#     CONCIERGE_AUTOSCALE_SERVICE: \"probes_concierge\"")
    );
}
