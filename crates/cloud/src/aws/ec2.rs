//! EC2's Query API (form-encoded POST to the regional endpoint, version 2016-11-15, XML
//! answers): the calls containment makes on instances, security groups and snapshots.
//!
//! The `*_params` functions build a call's parameters; plans show the same ones the calls send.

use super::{Aws, AwsError, Call, sigv4::uri_encode};
use crate::xml;

/// The API version every call names.
pub const EC2_VERSION: &str = "2016-11-15";

/// What containment needs of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub vpc_id: Option<String>,
    /// The instance's security groups (of its primary network interface).
    pub groups: Vec<String>,
    /// Its network interfaces, by device index.
    pub interfaces: Vec<Interface>,
    /// The EBS volumes attached to it.
    pub volumes: Vec<String>,
}

/// A network interface of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub id: String,
    pub device_index: u32,
    pub groups: Vec<String>,
}

/// A security group and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

/// One rule (an `IpPermission`) of a security group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// `-1` (all), `tcp`, `udp`, `icmp` or a number.
    pub protocol: String,
    pub from_port: Option<String>,
    pub to_port: Option<String>,
    pub cidrs: Vec<String>,
    pub ipv6_cidrs: Vec<String>,
    pub groups: Vec<String>,
    pub prefix_lists: Vec<String>,
}

impl Rule {
    /// Every protocol, every port, to `0.0.0.0/0`: the outbound rule a new group has.
    pub fn all_outbound() -> Rule {
        Rule {
            protocol: "-1".into(),
            cidrs: vec!["0.0.0.0/0".into()],
            ..Rule::default()
        }
    }

    /// The rule as `IpPermissions.<n>.*` parameters.
    pub fn params(&self, n: usize) -> Vec<(String, String)> {
        let p = format!("IpPermissions.{n}");
        let mut out = vec![(format!("{p}.IpProtocol"), self.protocol.clone())];
        if let Some(f) = &self.from_port {
            out.push((format!("{p}.FromPort"), f.clone()));
        }
        if let Some(t) = &self.to_port {
            out.push((format!("{p}.ToPort"), t.clone()));
        }
        for (i, c) in self.cidrs.iter().enumerate() {
            out.push((format!("{p}.IpRanges.{}.CidrIp", i + 1), c.clone()));
        }
        for (i, c) in self.ipv6_cidrs.iter().enumerate() {
            out.push((format!("{p}.Ipv6Ranges.{}.CidrIpv6", i + 1), c.clone()));
        }
        for (i, g) in self.groups.iter().enumerate() {
            out.push((format!("{p}.Groups.{}.GroupId", i + 1), g.clone()));
        }
        for (i, l) in self.prefix_lists.iter().enumerate() {
            out.push((
                format!("{p}.PrefixListIds.{}.PrefixListId", i + 1),
                l.clone(),
            ));
        }
        out
    }

    /// From an `<item>` of `ipPermissions` or `ipPermissionsEgress`.
    fn from_item(item: &str) -> Result<Rule, String> {
        let leaves = xml::leaves(item)?;
        let all = |path: &str| -> Vec<String> {
            leaves
                .iter()
                .filter(|(p, _)| p == path)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let one = |path: &str| all(path).into_iter().next().filter(|v| !v.is_empty());
        Ok(Rule {
            protocol: one("item/ipProtocol").unwrap_or_else(|| "-1".into()),
            from_port: one("item/fromPort"),
            to_port: one("item/toPort"),
            cidrs: all("item/ipRanges/item/cidrIp"),
            ipv6_cidrs: all("item/ipv6Ranges/item/cidrIpv6"),
            groups: all("item/groups/item/groupId"),
            prefix_lists: all("item/prefixListIds/item/prefixListId"),
        })
    }
}

/// Who may create volumes from a snapshot (its `createVolumePermission`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotPermissions {
    /// Account ids it is shared with, sorted.
    pub accounts: Vec<String>,
    /// Whether the group `all` is there: anyone may copy it.
    pub public: bool,
}

/// `GroupId.1=...` (ModifyInstanceAttribute) or `SecurityGroupId.1=...`
/// (ModifyNetworkInterfaceAttribute).
fn numbered(prefix: &str, values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{prefix}.{}", i + 1), v.clone()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `ModifyInstanceAttribute`: the instance's security groups become `groups`.
pub fn instance_groups_params(instance: &str, groups: &[String]) -> Vec<(String, String)> {
    let mut p = pairs(&[("InstanceId", instance)]);
    p.extend(numbered("GroupId", groups));
    p
}

/// `ModifyNetworkInterfaceAttribute`: the interface's security groups become `groups`.
pub fn interface_groups_params(interface: &str, groups: &[String]) -> Vec<(String, String)> {
    let mut p = pairs(&[("NetworkInterfaceId", interface)]);
    p.extend(numbered("SecurityGroupId", groups));
    p
}

/// `ModifySnapshotAttribute` of `createVolumePermission`: `add` or `remove` accounts and, with
/// `public`, the group `all`.
pub fn snapshot_permission_params(
    snapshot: &str,
    operation: &str,
    accounts: &[String],
    public: bool,
) -> Vec<(String, String)> {
    let mut p = pairs(&[
        ("SnapshotId", snapshot),
        ("Attribute", "createVolumePermission"),
        ("OperationType", operation),
    ]);
    p.extend(numbered("UserId", accounts));
    if public {
        p.push(("UserGroup.1".into(), "all".into()));
    }
    p
}

/// `RevokeSecurityGroupEgress` of `rules`.
pub fn revoke_egress_params(group: &str, rules: &[Rule]) -> Vec<(String, String)> {
    let mut p = pairs(&[("GroupId", group)]);
    for (i, r) in rules.iter().enumerate() {
        p.extend(r.params(i + 1));
    }
    p
}

impl Aws {
    /// One EC2 action; answers the XML text of the answer.
    pub fn ec2(
        &self,
        action: &'static str,
        params: &[(String, String)],
    ) -> Result<String, AwsError> {
        let mut form = vec![
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), EC2_VERSION.to_string()),
        ];
        form.extend(params.iter().cloned());
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
            .collect();
        let body = body.join("&");
        let resp = self.send(Call {
            service: "ec2",
            operation: action,
            method: "POST",
            origin: self.origin("ec2"),
            path: "/".into(),
            query: Vec::new(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body: body.as_bytes(),
            limit: 16 * 1024 * 1024,
        })?;
        Ok(String::from_utf8_lossy(&resp.body).into_owned())
    }

    /// An instance's VPC, security groups (of the instance and of each interface) and volumes.
    pub fn instance(&self, id: &str) -> Result<Instance, AwsError> {
        let text = self.ec2("DescribeInstances", &pairs(&[("InstanceId.1", id)]))?;
        parse_instance(&text).map_err(|message| AwsError::Answer {
            service: "ec2",
            operation: "DescribeInstances",
            message,
        })
    }

    /// Starts a snapshot of a volume; answers its id.
    pub fn create_snapshot(&self, volume: &str, description: &str) -> Result<String, AwsError> {
        let text = self.ec2(
            "CreateSnapshot",
            &pairs(&[("VolumeId", volume), ("Description", description)]),
        )?;
        one_value(&text, "snapshotId", "CreateSnapshot")
    }

    /// Creates a security group in a VPC; answers its id.
    pub fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc: &str,
    ) -> Result<String, AwsError> {
        let text = self.ec2(
            "CreateSecurityGroup",
            &pairs(&[
                ("GroupName", name),
                ("GroupDescription", description),
                ("VpcId", vpc),
            ]),
        )?;
        one_value(&text, "groupId", "CreateSecurityGroup")
    }

    /// A security group by id (an unknown id is AWS's `InvalidGroup.NotFound`).
    pub fn security_group(&self, id: &str) -> Result<SecurityGroup, AwsError> {
        let text = self.ec2("DescribeSecurityGroups", &pairs(&[("GroupId.1", id)]))?;
        let groups = parse_security_groups(&text).map_err(|message| AwsError::Answer {
            service: "ec2",
            operation: "DescribeSecurityGroups",
            message,
        })?;
        groups
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| AwsError::Answer {
                service: "ec2",
                operation: "DescribeSecurityGroups",
                message: format!("no security group {id} in the answer"),
            })
    }

    /// The security group of that name in a VPC, if there is one.
    pub fn security_group_named(
        &self,
        vpc: &str,
        name: &str,
    ) -> Result<Option<SecurityGroup>, AwsError> {
        let text = self.ec2(
            "DescribeSecurityGroups",
            &pairs(&[
                ("Filter.1.Name", "group-name"),
                ("Filter.1.Value.1", name),
                ("Filter.2.Name", "vpc-id"),
                ("Filter.2.Value.1", vpc),
            ]),
        )?;
        let groups = parse_security_groups(&text).map_err(|message| AwsError::Answer {
            service: "ec2",
            operation: "DescribeSecurityGroups",
            message,
        })?;
        Ok(groups
            .into_iter()
            .find(|g| g.name == name && g.vpc_id.as_deref() == Some(vpc)))
    }

    pub fn revoke_egress(&self, group: &str, rules: &[Rule]) -> Result<(), AwsError> {
        self.ec2(
            "RevokeSecurityGroupEgress",
            &revoke_egress_params(group, rules),
        )?;
        Ok(())
    }

    pub fn delete_security_group(&self, id: &str) -> Result<(), AwsError> {
        self.ec2("DeleteSecurityGroup", &pairs(&[("GroupId", id)]))?;
        Ok(())
    }

    /// Sets an instance's security groups (an instance with one network interface).
    pub fn set_instance_groups(&self, instance: &str, groups: &[String]) -> Result<(), AwsError> {
        self.ec2(
            "ModifyInstanceAttribute",
            &instance_groups_params(instance, groups),
        )?;
        Ok(())
    }

    /// Sets a network interface's security groups.
    pub fn set_interface_groups(&self, interface: &str, groups: &[String]) -> Result<(), AwsError> {
        self.ec2(
            "ModifyNetworkInterfaceAttribute",
            &interface_groups_params(interface, groups),
        )?;
        Ok(())
    }

    /// Who may create volumes from a snapshot.
    pub fn snapshot_permissions(&self, snapshot: &str) -> Result<SnapshotPermissions, AwsError> {
        let text = self.ec2(
            "DescribeSnapshotAttribute",
            &pairs(&[
                ("SnapshotId", snapshot),
                ("Attribute", "createVolumePermission"),
            ]),
        )?;
        parse_snapshot_permissions(&text).map_err(|message| AwsError::Answer {
            service: "ec2",
            operation: "DescribeSnapshotAttribute",
            message,
        })
    }

    /// Adds (`add`) or removes (`remove`) accounts and, with `public`, the group `all`.
    pub fn modify_snapshot_permissions(
        &self,
        snapshot: &str,
        operation: &str,
        accounts: &[String],
        public: bool,
    ) -> Result<(), AwsError> {
        self.ec2(
            "ModifySnapshotAttribute",
            &snapshot_permission_params(snapshot, operation, accounts, public),
        )?;
        Ok(())
    }
}

fn one_value(text: &str, name: &str, operation: &'static str) -> Result<String, AwsError> {
    let leaves = xml::leaves(text).map_err(|message| AwsError::Answer {
        service: "ec2",
        operation,
        message,
    })?;
    xml::first(&leaves, name)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| AwsError::Answer {
            service: "ec2",
            operation,
            message: format!("no {name}"),
        })
}

/// The text of every element whose path of names ends with `suffix` (`securityGroupInfo/item`),
/// start tag to end tag, in document order. EC2 answers are lists of `<item>`s that
/// [`xml::leaves`] alone cannot tell apart; each of these is read with it.
fn elements<'a>(doc: &'a str, suffix: &str) -> Vec<&'a str> {
    let matches = |stack: &[(&str, usize)], name: &str| {
        let mut path: Vec<&str> = stack.iter().map(|(n, _)| *n).collect();
        path.push(name);
        let path = path.join("/");
        path == suffix || path.ends_with(&format!("/{suffix}"))
    };
    let mut out: Vec<(usize, &str)> = Vec::new();
    let mut stack: Vec<(&str, usize)> = Vec::new();
    let mut i = 0;
    while let Some(lt) = doc[i..].find('<') {
        let start = i + lt;
        let rest = &doc[start..];
        let skip = [("<?", "?>"), ("<!--", "-->"), ("<![CDATA[", "]]>")]
            .iter()
            .find(|(open, _)| rest.starts_with(open))
            .map(|(_, close)| rest.find(close).map_or(rest.len(), |e| e + close.len()));
        if let Some(n) = skip {
            i = start + n;
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let end = start + gt + 1;
        let tag = &rest[1..gt];
        if tag.starts_with('/') {
            if let Some((name, open)) = stack.pop()
                && matches(&stack, name)
            {
                out.push((open, &doc[open..end]));
            }
        } else {
            let name = tag
                .trim_end_matches('/')
                .split_whitespace()
                .next()
                .unwrap_or("");
            if tag.ends_with('/') {
                if matches(&stack, name) {
                    out.push((start, &doc[start..end]));
                }
            } else {
                stack.push((name, start));
            }
        }
        i = end;
    }
    out.sort_by_key(|(start, _)| *start);
    out.into_iter().map(|(_, text)| text).collect()
}

/// The values at exactly `path` (paths of an element's own leaves start with its name).
fn values(leaves: &[(String, String)], path: &str) -> Vec<String> {
    leaves
        .iter()
        .filter(|(p, v)| p == path && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect()
}

fn parse_instance(text: &str) -> Result<Instance, String> {
    xml::leaves(text)?; // well formed
    let item = *elements(text, "reservationSet/item/instancesSet/item")
        .first()
        .ok_or("no instance in the answer")?;
    let leaves = xml::leaves(item)?;
    let mut interfaces = Vec::new();
    for ni in elements(item, "item/networkInterfaceSet/item") {
        let l = xml::leaves(ni)?;
        let id = values(&l, "item/networkInterfaceId")
            .into_iter()
            .next()
            .ok_or("a network interface without an id")?;
        interfaces.push(Interface {
            id,
            device_index: values(&l, "item/attachment/deviceIndex")
                .first()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0),
            groups: values(&l, "item/groupSet/item/groupId"),
        });
    }
    interfaces.sort_by_key(|i| i.device_index);
    Ok(Instance {
        id: values(&leaves, "item/instanceId")
            .into_iter()
            .next()
            .ok_or("an instance without an id")?,
        vpc_id: values(&leaves, "item/vpcId").into_iter().next(),
        groups: values(&leaves, "item/groupSet/item/groupId"),
        interfaces,
        volumes: values(&leaves, "item/blockDeviceMapping/item/ebs/volumeId"),
    })
}

fn parse_security_groups(text: &str) -> Result<Vec<SecurityGroup>, String> {
    xml::leaves(text)?;
    let mut out = Vec::new();
    for item in elements(text, "securityGroupInfo/item") {
        let leaves = xml::leaves(item)?;
        let rules = |path: &str| -> Result<Vec<Rule>, String> {
            elements(item, path)
                .into_iter()
                .map(Rule::from_item)
                .collect()
        };
        out.push(SecurityGroup {
            id: values(&leaves, "item/groupId")
                .into_iter()
                .next()
                .ok_or("a security group without an id")?,
            name: values(&leaves, "item/groupName")
                .into_iter()
                .next()
                .unwrap_or_default(),
            vpc_id: values(&leaves, "item/vpcId").into_iter().next(),
            ingress: rules("item/ipPermissions/item")?,
            egress: rules("item/ipPermissionsEgress/item")?,
        });
    }
    Ok(out)
}

fn parse_snapshot_permissions(text: &str) -> Result<SnapshotPermissions, String> {
    let leaves = xml::leaves(text)?;
    let mut p = SnapshotPermissions::default();
    for (path, value) in &leaves {
        if path.ends_with("createVolumePermission/item/userId") {
            p.accounts.push(value.clone());
        } else if path.ends_with("createVolumePermission/item/group") && value == "all" {
            p.public = true;
        }
    }
    p.accounts.sort();
    p.accounts.dedup();
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as AWS's DescribeInstances answer: the instance's groups after its interfaces,
    /// each interface with its own groups and nested lists of items.
    const INSTANCE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
 <requestId>r</requestId>
 <reservationSet><item><reservationId>r-1</reservationId><groupSet/>
  <instancesSet><item>
   <instanceId>i-0abc</instanceId>
   <blockDeviceMapping>
    <item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-1</volumeId><status>attached</status></ebs></item>
    <item><deviceName>/dev/sdf</deviceName><ebs><volumeId>vol-2</volumeId></ebs></item>
   </blockDeviceMapping>
   <vpcId>vpc-9</vpcId>
   <networkInterfaceSet>
    <item><networkInterfaceId>eni-b</networkInterfaceId>
     <groupSet><item><groupId>sg-3</groupId><groupName>c</groupName></item></groupSet>
     <attachment><deviceIndex>1</deviceIndex></attachment>
     <privateIpAddressesSet><item><privateIpAddress>10.0.0.5</privateIpAddress></item></privateIpAddressesSet>
    </item>
    <item><networkInterfaceId>eni-a</networkInterfaceId>
     <groupSet><item><groupId>sg-1</groupId><groupName>a</groupName></item><item><groupId>sg-2</groupId><groupName>b &amp; c</groupName></item></groupSet>
     <attachment><deviceIndex>0</deviceIndex></attachment>
    </item>
   </networkInterfaceSet>
   <groupSet><item><groupId>sg-1</groupId></item><item><groupId>sg-2</groupId></item></groupSet>
  </item></instancesSet>
 </item></reservationSet>
</DescribeInstancesResponse>"#;

    #[test]
    fn instances_give_groups_per_interface_and_volumes() {
        let i = parse_instance(INSTANCE).unwrap();
        assert_eq!(i.id, "i-0abc");
        assert_eq!(i.vpc_id.as_deref(), Some("vpc-9"));
        assert_eq!(i.groups, ["sg-1", "sg-2"]);
        assert_eq!(i.volumes, ["vol-1", "vol-2"]);
        assert_eq!(
            i.interfaces,
            [
                Interface {
                    id: "eni-a".into(),
                    device_index: 0,
                    groups: vec!["sg-1".into(), "sg-2".into()]
                },
                Interface {
                    id: "eni-b".into(),
                    device_index: 1,
                    groups: vec!["sg-3".into()]
                },
            ]
        );
        assert!(
            parse_instance(
                "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>"
            )
            .is_err()
        );
    }

    #[test]
    fn security_groups_give_their_rules_and_revoking_names_each_part() {
        let doc = r#"<DescribeSecurityGroupsResponse><securityGroupInfo>
<item><groupId>sg-1</groupId><groupName>iso</groupName><vpcId>vpc-9</vpcId><ipPermissions/>
 <ipPermissionsEgress>
  <item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges>
   <ipv6Ranges><item><cidrIpv6>::/0</cidrIpv6></item></ipv6Ranges><prefixListIds/></item>
  <item><ipProtocol>tcp</ipProtocol><fromPort>443</fromPort><toPort>443</toPort>
   <groups><item><groupId>sg-7</groupId><userId>1</userId></item></groups><ipRanges/></item>
 </ipPermissionsEgress></item>
<item><groupId>sg-2</groupId><groupName>web</groupName>
 <ipPermissions><item><ipProtocol>tcp</ipProtocol><fromPort>22</fromPort><toPort>22</toPort><ipRanges><item><cidrIp>10.0.0.0/8</cidrIp></item></ipRanges></item></ipPermissions>
 <ipPermissionsEgress/></item>
</securityGroupInfo></DescribeSecurityGroupsResponse>"#;
        let g = parse_security_groups(doc).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].name, "iso");
        assert!(g[0].ingress.is_empty());
        assert_eq!(g[0].egress.len(), 2);
        assert_eq!(g[0].egress[0].ipv6_cidrs, ["::/0"]);
        assert_eq!(g[1].ingress[0].from_port.as_deref(), Some("22"));
        assert!(g[1].egress.is_empty() && g[1].vpc_id.is_none());
        let p = revoke_egress_params("sg-1", &g[0].egress);
        let shown: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            shown,
            [
                "GroupId=sg-1",
                "IpPermissions.1.IpProtocol=-1",
                "IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0/0",
                "IpPermissions.1.Ipv6Ranges.1.CidrIpv6=::/0",
                "IpPermissions.2.IpProtocol=tcp",
                "IpPermissions.2.FromPort=443",
                "IpPermissions.2.ToPort=443",
                "IpPermissions.2.Groups.1.GroupId=sg-7",
            ]
        );
        assert_eq!(
            Rule::all_outbound(),
            Rule {
                ipv6_cidrs: vec![],
                ..g[0].egress[0].clone()
            }
        );
    }

    #[test]
    fn snapshot_permissions_tell_accounts_from_the_public() {
        let doc = r#"<DescribeSnapshotAttributeResponse><snapshotId>snap-1</snapshotId>
<createVolumePermission><item><group>all</group></item><item><userId>111122223333</userId></item><item><userId>444455556666</userId></item></createVolumePermission>
</DescribeSnapshotAttributeResponse>"#;
        let p = parse_snapshot_permissions(doc).unwrap();
        assert!(p.public);
        assert_eq!(p.accounts, ["111122223333", "444455556666"]);
        let none = parse_snapshot_permissions(
            "<DescribeSnapshotAttributeResponse><createVolumePermission/></DescribeSnapshotAttributeResponse>",
        )
        .unwrap();
        assert_eq!(none, SnapshotPermissions::default());
        let shown: Vec<String> = snapshot_permission_params("snap-1", "remove", &p.accounts, true)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            shown.join(" "),
            "SnapshotId=snap-1 Attribute=createVolumePermission OperationType=remove \
             UserId.1=111122223333 UserId.2=444455556666 UserGroup.1=all"
        );
    }
}
