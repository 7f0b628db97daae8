//! The simulated organisation: Ridgeline, a small SaaS company with three AWS accounts, an Entra ID
//! tenant with two Azure subscriptions, and two GCP projects for analytics and ML.
//!
//! Everything here is fixed data: people (with their offices, homes, timezones and working hours),
//! accounts, workloads and the resources they touch. The activity generators read it.

/// The company's mail and identity domain (`.example` is reserved, RFC 2606).
pub const DOMAIN: &str = "ridgeline.example";

/// AWS accounts.
pub const PROD: &str = "111122223333";
pub const DEV: &str = "444455556666";
pub const SEC: &str = "777788889999";

/// The AWS Organizations id and the Identity Center instance region.
pub const SSO_REGION: &str = "eu-west-1";

/// Identity Center permission sets, as the role names they create in each account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionSet {
    Admin,
    PowerUser,
    ReadOnly,
}

impl PermissionSet {
    pub fn role_name(self) -> &'static str {
        match self {
            PermissionSet::Admin => "AWSReservedSSO_AdministratorAccess_4f1a9b2c8d7e6f50",
            PermissionSet::PowerUser => "AWSReservedSSO_PowerUserAccess_93c2d4e5f6a7b801",
            PermissionSet::ReadOnly => "AWSReservedSSO_ReadOnly_0b7e3c1d9a8f2e64",
        }
    }
    /// Whether writes are allowed (a ReadOnly session's writes are denied).
    pub fn can_write(self) -> bool {
        !matches!(self, PermissionSet::ReadOnly)
    }
}

/// What an engineer mostly works on in AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Team {
    Platform,
    Backend,
    Data,
    Sre,
    Security,
    Frontend,
    Ml,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    Mac,
    Linux,
    Windows,
}

/// How an engineer reaches AWS.
#[derive(Debug)]
pub struct AwsHabits {
    pub team: Team,
    /// Identity Center access: account and permission set, with a weight (how often).
    pub sso: &'static [(&'static str, PermissionSet, u32)],
    /// A legacy IAM user with a long-lived access key, in this account.
    pub iam_user: Option<&'static str>,
    /// Share of the IAM user's use among the engineer's AWS sessions.
    pub iam_user_share: f64,
    pub regions: &'static [(&'static str, u32)],
    /// Share of sessions spent in the console rather than the CLI / scripts.
    pub console_share: f64,
    /// AWS work sessions per working day.
    pub sessions_per_day: f64,
    /// Calls per minute in a CLI session.
    pub pace: f64,
}

#[derive(Debug)]
pub struct Person {
    pub first: &'static str,
    pub last: &'static str,
    pub department: &'static str,
    pub city: &'static str,
    /// ISO 3166 alpha-2.
    pub country: &'static str,
    /// Offset from UTC in minutes (the scenario ignores daylight saving changes).
    pub tz_min: i32,
    /// Local working hours.
    pub start_h: f64,
    pub end_h: f64,
    /// Chance of some activity on a weekend day (on-call, catching up).
    pub weekend_p: f64,
    /// The office's egress address, if the person goes to one.
    pub office_ip: Option<&'static str>,
    pub home_ip: &'static str,
    /// Share of working days spent at the office.
    pub office_days: f64,
    pub os: Os,
    pub aws: Option<AwsHabits>,
    /// Does Azure Resource Manager work (portal, CLI).
    pub azure_arm: bool,
    /// Works in the GCP projects.
    pub gcp: bool,
}

impl Person {
    /// `alice.nguyen`
    pub fn handle(&self) -> String {
        format!(
            "{}.{}",
            self.first.to_ascii_lowercase(),
            self.last.to_ascii_lowercase().replace('\'', "")
        )
    }
    /// `alice.nguyen@ridgeline.example`
    pub fn email(&self) -> String {
        format!("{}@{DOMAIN}", self.handle())
    }
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }
}

pub const BERLIN_OFFICE: &str = "80.147.118.22";
pub const LONDON_OFFICE: &str = "81.134.77.9";
pub const SF_OFFICE: &str = "12.186.104.70";

const EU_REGIONS: &[(&str, u32)] = &[("eu-west-1", 80), ("eu-central-1", 8), ("us-east-1", 12)];
const US_REGIONS: &[(&str, u32)] = &[("eu-west-1", 55), ("us-east-1", 40), ("us-west-2", 5)];

/// Ten engineers (with AWS habits) and fourteen colleagues who only use Microsoft 365.
pub const PEOPLE: &[Person] = &[
    Person {
        first: "Alice",
        last: "Nguyen",
        department: "Platform",
        city: "San Francisco",
        country: "US",
        tz_min: -420,
        start_h: 8.5,
        end_h: 17.5,
        weekend_p: 0.1,
        office_ip: Some(SF_OFFICE),
        home_ip: "73.189.42.117",
        office_days: 0.6,
        os: Os::Mac,
        aws: Some(AwsHabits {
            team: Team::Platform,
            sso: &[
                (PROD, PermissionSet::Admin, 5),
                (DEV, PermissionSet::Admin, 4),
                (SEC, PermissionSet::ReadOnly, 1),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: US_REGIONS,
            console_share: 0.3,
            sessions_per_day: 4.0,
            pace: 1.6,
        }),
        azure_arm: true,
        gcp: false,
    },
    Person {
        first: "Bob",
        last: "Schmidt",
        department: "Backend",
        city: "Berlin",
        country: "DE",
        tz_min: 60,
        start_h: 9.0,
        end_h: 18.0,
        weekend_p: 0.05,
        office_ip: Some(BERLIN_OFFICE),
        home_ip: "91.65.201.88",
        office_days: 0.7,
        os: Os::Linux,
        aws: Some(AwsHabits {
            team: Team::Backend,
            sso: &[
                (DEV, PermissionSet::Admin, 6),
                (PROD, PermissionSet::ReadOnly, 3),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: EU_REGIONS,
            console_share: 0.35,
            sessions_per_day: 4.5,
            pace: 1.4,
        }),
        azure_arm: false,
        gcp: false,
    },
    Person {
        first: "Carol",
        last: "Okafor",
        department: "Data",
        city: "London",
        country: "GB",
        tz_min: 0,
        start_h: 9.0,
        end_h: 17.5,
        weekend_p: 0.05,
        office_ip: Some(LONDON_OFFICE),
        home_ip: "86.150.33.201",
        office_days: 0.5,
        os: Os::Mac,
        aws: Some(AwsHabits {
            team: Team::Data,
            sso: &[
                (PROD, PermissionSet::ReadOnly, 4),
                (DEV, PermissionSet::PowerUser, 3),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: &[("eu-west-1", 95), ("us-east-1", 5)],
            console_share: 0.5,
            sessions_per_day: 2.5,
            pace: 1.0,
        }),
        azure_arm: false,
        gcp: true,
    },
    Person {
        first: "Dmitri",
        last: "Volkov",
        department: "Platform",
        city: "Berlin",
        country: "DE",
        tz_min: 60,
        start_h: 10.0,
        end_h: 19.0,
        weekend_p: 0.15,
        office_ip: Some(BERLIN_OFFICE),
        home_ip: "95.91.214.60",
        office_days: 0.4,
        os: Os::Linux,
        aws: Some(AwsHabits {
            team: Team::Platform,
            sso: &[
                (DEV, PermissionSet::Admin, 4),
                (PROD, PermissionSet::ReadOnly, 1),
            ],
            iam_user: Some(PROD),
            iam_user_share: 0.45,
            regions: EU_REGIONS,
            console_share: 0.15,
            sessions_per_day: 4.0,
            pace: 1.8,
        }),
        azure_arm: false,
        gcp: false,
    },
    Person {
        first: "Erin",
        last: "Walsh",
        department: "SRE",
        city: "New York",
        country: "US",
        tz_min: -240,
        start_h: 8.0,
        end_h: 17.0,
        weekend_p: 0.2,
        office_ip: None,
        home_ip: "72.229.84.13",
        office_days: 0.0,
        os: Os::Mac,
        aws: Some(AwsHabits {
            team: Team::Sre,
            sso: &[
                (PROD, PermissionSet::Admin, 6),
                (DEV, PermissionSet::Admin, 2),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: US_REGIONS,
            console_share: 0.45,
            sessions_per_day: 5.0,
            pace: 1.5,
        }),
        azure_arm: true,
        gcp: true,
    },
    Person {
        first: "Farid",
        last: "Haddad",
        department: "Backend",
        city: "Berlin",
        country: "DE",
        tz_min: 60,
        start_h: 9.5,
        end_h: 18.5,
        weekend_p: 0.05,
        office_ip: Some(BERLIN_OFFICE),
        home_ip: "178.2.141.77",
        office_days: 0.6,
        os: Os::Windows,
        aws: Some(AwsHabits {
            team: Team::Backend,
            sso: &[
                (DEV, PermissionSet::PowerUser, 6),
                (PROD, PermissionSet::ReadOnly, 2),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: EU_REGIONS,
            console_share: 0.4,
            sessions_per_day: 3.5,
            pace: 1.2,
        }),
        azure_arm: false,
        gcp: false,
    },
    Person {
        first: "Grace",
        last: "Kim",
        department: "Security",
        city: "London",
        country: "GB",
        tz_min: 0,
        start_h: 8.5,
        end_h: 17.0,
        weekend_p: 0.1,
        office_ip: Some(LONDON_OFFICE),
        home_ip: "109.152.20.45",
        office_days: 0.6,
        os: Os::Mac,
        aws: Some(AwsHabits {
            team: Team::Security,
            sso: &[
                (SEC, PermissionSet::Admin, 6),
                (PROD, PermissionSet::ReadOnly, 3),
                (DEV, PermissionSet::ReadOnly, 1),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: &[("eu-west-1", 85), ("us-east-1", 15)],
            console_share: 0.5,
            sessions_per_day: 3.5,
            pace: 1.2,
        }),
        azure_arm: true,
        gcp: true,
    },
    Person {
        first: "Hiro",
        last: "Tanaka",
        department: "Machine Learning",
        city: "Tokyo",
        country: "JP",
        tz_min: 540,
        start_h: 9.5,
        end_h: 18.5,
        weekend_p: 0.1,
        office_ip: None,
        home_ip: "153.246.77.12",
        office_days: 0.0,
        os: Os::Linux,
        aws: Some(AwsHabits {
            team: Team::Ml,
            sso: &[
                (PROD, PermissionSet::ReadOnly, 1),
                (DEV, PermissionSet::PowerUser, 3),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: &[("eu-west-1", 70), ("us-east-1", 30)],
            console_share: 0.3,
            sessions_per_day: 2.0,
            pace: 1.0,
        }),
        azure_arm: false,
        gcp: true,
    },
    Person {
        first: "Isabel",
        last: "Romero",
        department: "Frontend",
        city: "Madrid",
        country: "ES",
        tz_min: 60,
        start_h: 9.0,
        end_h: 18.5,
        weekend_p: 0.03,
        office_ip: None,
        home_ip: "83.44.161.90",
        office_days: 0.0,
        os: Os::Mac,
        aws: Some(AwsHabits {
            team: Team::Frontend,
            sso: &[
                (DEV, PermissionSet::PowerUser, 4),
                (PROD, PermissionSet::ReadOnly, 2),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: EU_REGIONS,
            console_share: 0.7,
            sessions_per_day: 2.0,
            pace: 0.9,
        }),
        azure_arm: false,
        gcp: false,
    },
    Person {
        first: "Jonas",
        last: "Berg",
        department: "SRE",
        city: "Stockholm",
        country: "SE",
        tz_min: 60,
        start_h: 8.0,
        end_h: 16.5,
        weekend_p: 0.5,
        office_ip: None,
        home_ip: "81.227.52.141",
        office_days: 0.0,
        os: Os::Linux,
        aws: Some(AwsHabits {
            team: Team::Sre,
            sso: &[
                (PROD, PermissionSet::Admin, 5),
                (DEV, PermissionSet::Admin, 1),
            ],
            iam_user: None,
            iam_user_share: 0.0,
            regions: EU_REGIONS,
            console_share: 0.3,
            sessions_per_day: 4.0,
            pace: 1.5,
        }),
        azure_arm: true,
        gcp: false,
    },
    // Colleagues outside engineering: Microsoft 365 only.
    office_worker(
        "Kate",
        "Miller",
        "Finance",
        "London",
        "GB",
        0,
        Some(LONDON_OFFICE),
        "86.164.90.12",
        Os::Windows,
    ),
    office_worker(
        "Liam",
        "OBrien",
        "Sales",
        "London",
        "GB",
        0,
        Some(LONDON_OFFICE),
        "92.26.133.57",
        Os::Windows,
    ),
    office_worker(
        "Maria",
        "Rossi",
        "Sales",
        "Berlin",
        "DE",
        60,
        Some(BERLIN_OFFICE),
        "31.16.224.9",
        Os::Mac,
    ),
    office_worker(
        "Noah",
        "Fischer",
        "Operations",
        "Berlin",
        "DE",
        60,
        Some(BERLIN_OFFICE),
        "77.0.118.203",
        Os::Windows,
    ),
    office_worker(
        "Olivia",
        "Brown",
        "People",
        "London",
        "GB",
        0,
        Some(LONDON_OFFICE),
        "81.98.40.166",
        Os::Mac,
    ),
    office_worker(
        "Pablo",
        "Garcia",
        "Sales",
        "Madrid",
        "ES",
        60,
        None,
        "88.26.71.140",
        Os::Windows,
    ),
    office_worker(
        "Quinn",
        "Taylor",
        "Executive",
        "San Francisco",
        "US",
        -420,
        Some(SF_OFFICE),
        "98.210.7.61",
        Os::Mac,
    ),
    office_worker(
        "Ruth",
        "Cohen",
        "Finance",
        "Berlin",
        "DE",
        60,
        Some(BERLIN_OFFICE),
        "46.114.6.190",
        Os::Windows,
    ),
    office_worker(
        "Sam",
        "Patel",
        "Customer Success",
        "London",
        "GB",
        0,
        Some(LONDON_OFFICE),
        "82.132.219.30",
        Os::Mac,
    ),
    office_worker(
        "Tara",
        "Singh",
        "Marketing",
        "Berlin",
        "DE",
        60,
        Some(BERLIN_OFFICE),
        "37.201.146.74",
        Os::Mac,
    ),
    office_worker(
        "Uma",
        "Larsen",
        "Design",
        "Stockholm",
        "SE",
        60,
        None,
        "90.229.133.18",
        Os::Mac,
    ),
    office_worker(
        "Victor",
        "Moreau",
        "Sales",
        "Paris",
        "FR",
        60,
        None,
        "90.63.221.104",
        Os::Windows,
    ),
    office_worker(
        "Wendy",
        "Zhang",
        "Office",
        "San Francisco",
        "US",
        -420,
        Some(SF_OFFICE),
        "76.102.88.215",
        Os::Windows,
    ),
    office_worker(
        "Yusuf",
        "Demir",
        "Support",
        "Berlin",
        "DE",
        60,
        Some(BERLIN_OFFICE),
        "95.90.233.41",
        Os::Windows,
    ),
];

#[allow(clippy::too_many_arguments)]
const fn office_worker(
    first: &'static str,
    last: &'static str,
    department: &'static str,
    city: &'static str,
    country: &'static str,
    tz_min: i32,
    office_ip: Option<&'static str>,
    home_ip: &'static str,
    os: Os,
) -> Person {
    Person {
        first,
        last,
        department,
        city,
        country,
        tz_min,
        start_h: 8.5,
        end_h: 17.5,
        weekend_p: 0.04,
        office_ip,
        home_ip,
        office_days: if office_ip.is_some() { 0.65 } else { 0.0 },
        os,
        aws: None,
        azure_arm: false,
        gcp: false,
    }
}

/// The person with this first name (panics on a typo: the data is fixed).
pub fn person(first: &str) -> &'static Person {
    PEOPLE
        .iter()
        .find(|p| p.first == first)
        .expect("a person of the scenario")
}

/// Browser user agents by OS.
pub fn browser_ua(os: Os) -> &'static str {
    match os {
        Os::Mac => {
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
        }
        Os::Linux => "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        Os::Windows => {
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"
        }
    }
}

/// The AWS CLI's user agent on an engineer's machine, for one command.
pub fn aws_cli_ua(os: Os, command: &str) -> String {
    let platform = match os {
        Os::Mac => "os/macos#23.4.0 md/arch#arm64 lang/python#3.11.8 md/pyimpl#CPython",
        Os::Linux => {
            "os/linux#6.5.0-28-generic md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython"
        }
        Os::Windows => {
            "os/linux#5.15.146.1-microsoft-standard-WSL2 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython"
        }
    };
    let distrib = match os {
        Os::Mac => "md/installer#source",
        Os::Linux => "md/installer#exe md/distrib#ubuntu.22",
        Os::Windows => "md/installer#exe md/distrib#ubuntu.22",
    };
    format!(
        "aws-cli/2.15.38 md/awscrt#0.19.19 ua/2.0 {platform} cfg/retry-mode#standard {distrib} md/prompt#off md/command#{command}"
    )
}

/// Boto3 on an engineer's machine (their own scripts and notebooks).
pub fn boto3_ua(os: Os) -> &'static str {
    match os {
        Os::Mac => {
            "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84"
        }
        _ => {
            "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#6.5.0-28-generic md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84"
        }
    }
}

pub const TERRAFORM_UA: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.46.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 ua/2.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64";

/// Prod workloads.
pub const APP_SERVERS: &[&str] = &["i-0f3c9a2b7d1e4a5c6", "i-0a71e2c94b5d8f013"];
pub const BATCH_WORKER: &str = "i-05d6e7f8091a2b3c4";
pub const LEGACY_DB: &str = "i-0c4d2e8f1a3b5c7d9";
pub const LEGACY_DB_VOLUME: &str = "vol-0e9f8a7b6c5d4e3f2";
pub const DEV_BOX: &str = "i-0b8e1d4f7a2c5e903";
pub const BASTION: &str = "i-0d2f6a8c4e1b3d579";

/// Buckets per account.
pub fn buckets(account: &str) -> &'static [&'static str] {
    match account {
        PROD => &[
            "ridgeline-prod-assets",
            "ridgeline-prod-uploads",
            "ridgeline-prod-backups",
            "ridgeline-prod-reports",
            "ridgeline-tfstate-prod",
        ],
        DEV => &[
            "ridgeline-dev-assets",
            "ridgeline-dev-uploads",
            "ridgeline-ml-datasets",
            "ridgeline-tfstate-dev",
        ],
        _ => &[
            "ridgeline-org-cloudtrail-logs",
            "ridgeline-config-history",
            "ridgeline-athena-results-sec",
        ],
    }
}

pub fn env_of(account: &str) -> &'static str {
    match account {
        PROD => "prod",
        DEV => "dev",
        _ => "security",
    }
}

pub const LAMBDAS: &[&str] = &["orders-handler", "image-resizer", "nightly-report"];
pub const ECS_SERVICES: &[&str] = &["api", "web", "worker"];
pub const TABLES: &[&str] = &["orders", "sessions", "feature-flags"];
pub const SECRETS: &[&str] = &["orders-db", "stripe-api-key", "sendgrid", "jwt-signing-key"];
pub const PARAMS: &[&str] = &[
    "api/base-url",
    "api/feature-flags",
    "worker/concurrency",
    "web/cdn-domain",
];
pub const ROLES: &[&str] = &[
    "app-server-role",
    "batch-worker-role",
    "orders-handler-role",
    "image-resizer-role",
    "nightly-report-role",
    "github-actions-deploy",
    "ecs-task-api",
];
pub const QUEUES: &[&str] = &["orders-events", "image-jobs", "email-outbox"];
pub const LOG_GROUPS: &[&str] = &[
    "/aws/lambda/orders-handler",
    "/aws/lambda/image-resizer",
    "/ecs/api",
    "/ecs/web",
    "/ecs/worker",
];

/// GitHub-hosted runners leave from Azure address space; each job gets another address.
pub const RUNNER_PREFIXES: &[&str] = &["20.102", "20.98", "4.175", "52.225", "40.84", "172.183"];

/// Azure.
pub const TENANT: &str = "5c1d3e7a-9b24-4f6e-8a10-2d7c9e4b6f31";
pub const SUB_PROD: &str = "8e2b4f6a-1c3d-4e5f-9a7b-0c2d4e6f8a91";
pub const SUB_DEV: &str = "3a5c7e9b-2d4f-4a6c-8e0b-1d3f5a7c9e02";

/// GCP.
pub const GCP_DATA: &str = "ridgeline-data-prod";
pub const GCP_ML: &str = "ridgeline-ml-dev";
