//! The capabilities a step needs from an account, as one bound.

use crate::ports::{
    Alarms, CommandRunner, Executions, GroupReader, GroupWriter, Images, InstanceLauncher, InstanceReader, LaunchTemplates, ListenerRules,
    ManagedInstances, Notifications, Parameters, ProcessControl, ResourceTags, TargetGroupSettings, TargetHealthReader, TargetRegistration,
    TaskAnswers, VcpuQuota,
};

/// Everything the deploy steps need from an account.
pub trait DeployAccount:
    GroupReader
    + GroupWriter
    + ProcessControl
    + InstanceReader
    + InstanceLauncher
    + Images
    + TargetHealthReader
    + LaunchTemplates
    + Parameters
    + ListenerRules
    + CommandRunner
    + TargetRegistration
    + Executions
    + Alarms
    + TaskAnswers
    + Notifications
    + ResourceTags
    + TargetGroupSettings
    + ManagedInstances
    + VcpuQuota
{
}
impl<
    T: GroupReader
        + GroupWriter
        + ProcessControl
        + InstanceReader
        + InstanceLauncher
        + Images
        + TargetHealthReader
        + LaunchTemplates
        + Parameters
        + ListenerRules
        + CommandRunner
        + TargetRegistration
        + Executions
        + Alarms
        + TaskAnswers
        + Notifications
        + ResourceTags
        + TargetGroupSettings
        + ManagedInstances
        + VcpuQuota,
> DeployAccount for T
{
}
