//! The controllers around the policy, played through the release module in the waPC host.
//!
//! No single request shows a policy fighting a controller; a sequence does. Each scenario
//! starts from a workload created before the policy (its templates keep `IfNotPresent`), and
//! every step is what a user does (the owner's UPDATE) followed by what the controllers do with
//! the result: the Deployment controller creates a ReplicaSet from a changed template or
//! scales the current one, the CronJob controller creates a Job, and the ReplicaSet and Job
//! controllers create Pods. Every request goes through the module, and every patch is applied
//! as the API server would. After each step:
//! - the controller's own comparison still holds (a ReplicaSet's template equals its
//!   Deployment's apart from the `pod-template-hash` label; a Job's template equals its
//!   CronJob's job template), so it would create nothing more;
//! - every Pod runs with `imagePullPolicy: Always`.
//!
//! A new scenario is one entry of `SCENARIOS`.

mod common;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use policy_host::admission::{parse_request, AdmissionResponse};
use policy_host::engine::{EngineOptions, Policy};

/// What a user does to the owner of the chain.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// `kubectl rollout restart`: an annotation on the pod template.
    RolloutRestart,
    /// A Helm upgrade that changes an environment variable of the first container.
    SetEnv(&'static str, &'static str),
    /// `kubectl scale`.
    Scale(u64),
    /// `kubectl set image` on the first container.
    SetImage(&'static str),
    /// A new sidecar container, without a pull policy (the API server defaults it).
    AddSidecar(&'static str, &'static str),
    /// A CronJob's `suspend` flag.
    Suspend(bool),
    /// The CronJob's schedule fires: no change by the user, the controller creates a Job.
    Fire,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Deployment,
    CronJob,
}

struct Scenario {
    name: &'static str,
    owner: Owner,
    settings: &'static str,
    steps: &'static [Change],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "Deployment from before the policy: restart, Helm env change, scale, new image",
        owner: Owner::Deployment,
        settings: "{}",
        steps: &[
            Change::RolloutRestart,
            Change::SetEnv("LOG_LEVEL", "debug"),
            Change::Scale(5),
            Change::SetImage("registry.example.com/team/web:1.5.0"),
            Change::RolloutRestart,
        ],
    },
    Scenario {
        name: "Deployment from before the policy gains a sidecar, then restarts",
        owner: Owner::Deployment,
        settings: "{}",
        steps: &[
            Change::AddSidecar("metrics", "registry.example.com/team/metrics:0.9.1"),
            Change::RolloutRestart,
            Change::Scale(1),
        ],
    },
    Scenario {
        name: "GitOps: templates never mutated, Pods always",
        owner: Owner::Deployment,
        settings: r#"{"mutateTemplates": false}"#,
        steps: &[
            Change::RolloutRestart,
            Change::SetImage("registry.example.com/team/web:1.5.0"),
            Change::Scale(3),
        ],
    },
    Scenario {
        name: "CronJob from before the policy: fires, is suspended and resumed, new image",
        owner: Owner::CronJob,
        settings: "{}",
        steps: &[
            Change::Fire,
            Change::Suspend(true),
            Change::Suspend(false),
            Change::Fire,
            Change::SetImage("registry.example.com/team/report:2.1.0"),
            Change::Fire,
        ],
    },
];

const HASH_LABEL: &str = "pod-template-hash";

/// The admission side: the release module, and requests as the API server sends them.
struct ApiServer {
    policy: Policy,
    settings: Map<String, Value>,
    uids: u32,
    /// Every request this scenario sent, for failure messages.
    log: Vec<String>,
}

impl ApiServer {
    /// Sends `object` (CREATE, or UPDATE of `old`) through the module and applies its patch.
    /// Panics when the module refuses: no step of a scenario may be refused.
    fn admit(&mut self, object: &Value, old: Option<&Value>, user: &str) -> Value {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let (group, version) = match object["apiVersion"].as_str().unwrap_or_default() {
            "v1" => ("", "v1"),
            other => other.split_once('/').unwrap_or(("", other)),
        };
        self.uids += 1;
        let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
        let request = json!({
            "uid": format!("00000000-0000-4000-8000-{:012}", self.uids),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version,
                         "resource": format!("{}s", kind.to_lowercase())},
            "name": object["metadata"]["name"],
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": user},
            "object": object,
            "oldObject": old,
        });
        let (request, _) = parse_request(&request).expect("a well-formed AdmissionRequest");
        let response: AdmissionResponse = self
            .policy
            .instantiate()
            .and_then(|instance| instance.validate(&request, &self.settings))
            .expect("the module answers");
        self.log.push(format!(
            "{operation} {kind} {} by {user}: {}",
            object["metadata"]["name"],
            response.to_line()
        ));
        assert!(
            response.allowed,
            "refused: {}\n{}",
            response.to_line(),
            self.log.join("\n")
        );
        let mut admitted = object.clone();
        if let Some(patch) = &response.patch {
            let patch = base64::engine::general_purpose::STANDARD
                .decode(patch)
                .expect("the patch is base64");
            let patch: json_patch::Patch =
                serde_json::from_slice(&patch).expect("the patch is a JSON Patch");
            json_patch::patch(&mut admitted, &patch).expect("the patch applies");
        }
        admitted
    }
}

/// The first container of a pod template, as a user edits it.
fn first_container(template: &mut Value) -> &mut Value {
    &mut template["spec"]["containers"][0]
}

/// A pod spec as `kubectl create` sends it after the API server's defaulting, before the
/// policy existed: `IfNotPresent` written out.
fn pod_template(app: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [{
                "name": app, "image": image, "imagePullPolicy": "IfNotPresent",
                "env": [{"name": "LOG_LEVEL", "value": "info"}],
                "resources": {}, "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            }],
            "initContainers": [{
                "name": "migrate", "image": format!("{image}-migrations"),
                "imagePullPolicy": "IfNotPresent", "resources": {}
            }],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"
        }
    })
}

fn owner_reference(owner: &Value) -> Value {
    json!([{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true
    }])
}

/// A template without the label the Deployment controller adds, as `EqualIgnoreHash` sees it.
fn without_hash(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    template
}

/// A stand-in for the controller's hash of a template: any value that differs per template.
fn template_hash(template: &Value) -> String {
    let text = without_hash(template).to_string();
    let sum = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:010x}", sum & 0xff_ffff_ffff)
}

/// Every Pod the chain created: each container and init container pulls with `Always`.
fn assert_pods_pull_always(pods: &[Value], log: &[String]) {
    for pod in pods {
        for list in ["containers", "initContainers"] {
            for container in pod["spec"][list].as_array().into_iter().flatten() {
                assert_eq!(
                    container["imagePullPolicy"],
                    "Always",
                    "Pod {} {list} {}: {container}\n{}",
                    pod["metadata"]["name"],
                    container["name"],
                    log.join("\n")
                );
            }
        }
    }
}

struct DeploymentChain {
    deployment: Value,
    replica_sets: Vec<Value>,
    pods: Vec<Value>,
}

impl DeploymentChain {
    fn before_the_policy() -> Self {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default",
                         "uid": "a1b2c3d4-0000-4000-8000-000000000001", "generation": 1},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": pod_template("web", "registry.example.com/team/web:1.4.2")}
        });
        let mut chain = Self {
            deployment,
            replica_sets: Vec::new(),
            pods: Vec::new(),
        };
        // The ReplicaSet and Pods that existed before the policy: never sent to it.
        let replica_set = chain.replica_set_for_template();
        chain.replica_sets.push(replica_set);
        chain
    }

    /// What the Deployment controller makes for the current template.
    fn replica_set_for_template(&self) -> Value {
        let mut template = self.deployment["spec"]["template"].clone();
        let hash = template_hash(&template);
        template["metadata"]["labels"][HASH_LABEL] = json!(hash);
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("web-{hash}"), "namespace": "default",
                         "labels": {"app": "web", HASH_LABEL: hash},
                         "ownerReferences": owner_reference(&self.deployment)},
            "spec": {"replicas": self.deployment["spec"]["replicas"],
                     "selector": {"matchLabels": {"app": "web", HASH_LABEL: hash}},
                     "template": template}
        })
    }

    fn step(&mut self, api: &mut ApiServer, change: Change) {
        let mut edited = self.deployment.clone();
        let template = &mut edited["spec"]["template"];
        match change {
            Change::RolloutRestart => {
                template["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/restartedAt": format!("2026-12-01T00:00:{:02}Z", api.uids % 60)});
            }
            Change::SetEnv(name, value) => {
                first_container(template)["env"] = json!([{"name": name, "value": value}]);
            }
            Change::Scale(replicas) => edited["spec"]["replicas"] = json!(replicas),
            Change::SetImage(image) => first_container(template)["image"] = json!(image),
            Change::AddSidecar(name, image) => {
                let sidecar = json!({"name": name, "image": image, "resources": {}});
                template["spec"]["containers"]
                    .as_array_mut()
                    .expect("containers")
                    .push(sidecar);
            }
            Change::Suspend(_) | Change::Fire => unreachable!("not a Deployment change"),
        }
        self.deployment = api.admit(&edited, Some(&self.deployment), "alice");

        // The Deployment controller: a ReplicaSet whose template equals the Deployment's
        // (ignoring the hash label) is current; without one, it creates one.
        let wanted = without_hash(&self.deployment["spec"]["template"]);
        let current = self
            .replica_sets
            .iter()
            .position(|rs| without_hash(&rs["spec"]["template"]) == wanted);
        let controller = "system:serviceaccount:kube-system:deployment-controller";
        let index = match current {
            Some(index) => {
                let mut scaled = self.replica_sets[index].clone();
                scaled["spec"]["replicas"] = self.deployment["spec"]["replicas"].clone();
                if scaled != self.replica_sets[index] {
                    self.replica_sets[index] =
                        api.admit(&scaled, Some(&self.replica_sets[index]), controller);
                }
                index
            }
            None => {
                let created = api.admit(&self.replica_set_for_template(), None, controller);
                self.replica_sets.push(created);
                self.replica_sets.len() - 1
            }
        };
        let replica_set = &self.replica_sets[index];
        assert_eq!(
            without_hash(&replica_set["spec"]["template"]),
            wanted,
            "after {change:?}, the ReplicaSet's template differs from the Deployment's: the \
             controller would create another ReplicaSet\n{}",
            api.log.join("\n")
        );

        // The ReplicaSet controller: a new Pod from the ReplicaSet's template.
        let mut pod = replica_set["spec"]["template"].clone();
        pod["apiVersion"] = json!("v1");
        pod["kind"] = json!("Pod");
        pod["metadata"]["name"] = json!(format!(
            "{}-{}",
            replica_set["metadata"]["name"].as_str().unwrap_or_default(),
            api.uids
        ));
        pod["metadata"]["ownerReferences"] = owner_reference(replica_set);
        let pod = api.admit(
            &pod,
            None,
            "system:serviceaccount:kube-system:replicaset-controller",
        );
        self.pods.push(pod);
    }
}

struct CronJobChain {
    cron_job: Value,
    jobs: Vec<Value>,
    pods: Vec<Value>,
}

impl CronJobChain {
    fn before_the_policy() -> Self {
        let cron_job = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "default",
                         "uid": "a1b2c3d4-0000-4000-8000-000000000002"},
            "spec": {"schedule": "*/5 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template":
                        pod_template("report", "registry.example.com/team/report:2.0.0")}}}
        });
        Self {
            cron_job,
            jobs: Vec::new(),
            pods: Vec::new(),
        }
    }

    fn step(&mut self, api: &mut ApiServer, change: Change) {
        if !matches!(change, Change::Fire) {
            let mut edited = self.cron_job.clone();
            match change {
                Change::Suspend(suspend) => edited["spec"]["suspend"] = json!(suspend),
                Change::SetImage(image) => {
                    let template = &mut edited["spec"]["jobTemplate"]["spec"]["template"];
                    first_container(template)["image"] = json!(image);
                }
                other => unreachable!("not a CronJob change: {other:?}"),
            }
            self.cron_job = api.admit(&edited, Some(&self.cron_job), "alice");
            return;
        }
        // The CronJob controller copies the job template into a new Job.
        let template = self.cron_job["spec"]["jobTemplate"]["spec"].clone();
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": format!("report-{}", 29_433_600 + api.uids),
                         "namespace": "default",
                         "ownerReferences": owner_reference(&self.cron_job)},
            "spec": template
        });
        let job = api.admit(
            &job,
            None,
            "system:serviceaccount:kube-system:cronjob-controller",
        );
        assert_eq!(
            job["spec"]["template"],
            self.cron_job["spec"]["jobTemplate"]["spec"]["template"],
            "the Job differs from its CronJob's job template\n{}",
            api.log.join("\n")
        );
        // The Job controller creates its Pod.
        let mut pod = job["spec"]["template"].clone();
        pod["apiVersion"] = json!("v1");
        pod["kind"] = json!("Pod");
        pod["metadata"]["name"] = json!(format!(
            "{}-pod",
            job["metadata"]["name"].as_str().unwrap_or_default()
        ));
        pod["metadata"]["ownerReferences"] = owner_reference(&job);
        let pod = api.admit(
            &pod,
            None,
            "system:serviceaccount:kube-system:job-controller",
        );
        self.jobs.push(job);
        self.pods.push(pod);
    }
}

fn api_server(settings: &str) -> ApiServer {
    let module = common::policy_module().expect("the policy module builds for wasm32-wasip1");
    let policy = Policy::from_file(&module, EngineOptions::default()).expect("the module loads");
    let settings: Map<String, Value> = serde_json::from_str(settings).expect("settings JSON");
    ApiServer {
        policy,
        settings,
        uids: 0,
        log: Vec::new(),
    }
}

#[test]
fn controllers_never_fight_the_policy_and_every_pod_pulls_always() {
    for scenario in SCENARIOS {
        let mut api = api_server(scenario.settings);
        api.log.push(format!("scenario: {}", scenario.name));
        let pods = match scenario.owner {
            Owner::Deployment => {
                let mut chain = DeploymentChain::before_the_policy();
                for change in scenario.steps {
                    chain.step(&mut api, *change);
                }
                chain.pods
            }
            Owner::CronJob => {
                let mut chain = CronJobChain::before_the_policy();
                for change in scenario.steps {
                    chain.step(&mut api, *change);
                }
                assert!(
                    !chain.jobs.is_empty(),
                    "{}: no Job was created",
                    scenario.name
                );
                chain.pods
            }
        };
        assert!(!pods.is_empty(), "{}: no Pod was created", scenario.name);
        assert_pods_pull_always(&pods, &api.log);
    }
}

/// The scenarios above would fail if the policy mutated a controlled ReplicaSet: the same
/// rollout restart, with the ReplicaSet sent without its owner reference, is mutated, and its
/// template then differs from the Deployment's.
#[test]
fn the_comparison_catches_a_mutated_replica_set() {
    let mut api = api_server("{}");
    let chain = DeploymentChain::before_the_policy();
    let mut orphan = chain.replica_set_for_template();
    orphan["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("ownerReferences");
    let admitted = api.admit(&orphan, None, "alice");
    assert_ne!(
        without_hash(&admitted["spec"]["template"]),
        without_hash(&chain.deployment["spec"]["template"])
    );
}
