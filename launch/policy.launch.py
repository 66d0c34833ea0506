"""Deploy a trained ACT-JEPA policy as a lifecycle node.

    ros2 launch actjepa_ros policy.launch.py checkpoint:=/path/to/bc.pt
    ros2 launch actjepa_ros policy.launch.py checkpoint:=... \
        params_file:=$(ros2 pkg prefix actjepa_ros)/share/actjepa_ros/config/ros2_control_arm.yaml

The node reads every setting from ``params_file`` (default: config/policy.yaml, wired to the
simulated arm); the launch arguments below override the few that change from run to run. With
``autostart:=false`` the node waits unconfigured for a lifecycle manager (or
``ros2 lifecycle set /policy_node configure``). Discovery stays on this host unless
``discovery_range:=SUBNET`` (docs/SECURITY.md). Without a ROS install, the same node and YAML run
as ``python -m actjepa_ros.policy_node --ros-args --params-file config/policy.yaml``.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'actjepa_ros'
LOG_LEVEL = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]


def discovery_range_environment() -> list[SetEnvironmentVariable]:
    """Localhost-only discovery unless the discovery_range argument opens it (Iron and later
    read ROS_AUTOMATIC_DISCOVERY_RANGE, Humble ROS_LOCALHOST_ONLY)."""
    chosen = LaunchConfiguration('discovery_range')
    return [SetEnvironmentVariable('ROS_AUTOMATIC_DISCOVERY_RANGE', chosen),
            SetEnvironmentVariable('ROS_LOCALHOST_ONLY', PythonExpression(
                ["'1' if '", chosen, "' == 'LOCALHOST' else '0'"]))]


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', 'policy.yaml'])
    arguments = [
        DeclareLaunchArgument('checkpoint', description='Policy file from `actjepa '
                              'train-policy` (required).'),
        DeclareLaunchArgument('policy_type', default_value='',
                              description="Required policy type: '' (any), bc, nn or mpc."),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='policy_node parameters (ROS params-file YAML).'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Log level of the node(s): debug, info, warn, error '
                                          'or fatal.'),
        DeclareLaunchArgument('discovery_range', default_value='LOCALHOST',
                              choices=['LOCALHOST', 'SUBNET', 'OFF', 'SYSTEM_DEFAULT'],
                              description='ROS_AUTOMATIC_DISCOVERY_RANGE of the node(s): '
                                          'LOCALHOST (default) keeps other hosts from '
                                          'discovering them; SUBNET opens them to the network '
                                          '(docs/SECURITY.md).'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace for the node and its relative topics.'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Follow /clock (true with sim_node or Gazebo).'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='Configure and activate without a lifecycle manager.'),
    ]
    policy = LifecycleNode(
        package=PACKAGE, executable='policy_node', name='policy_node',
        namespace=LaunchConfiguration('namespace'), output='screen', arguments=LOG_LEVEL,
        parameters=[
            LaunchConfiguration('params_file'),
            {'checkpoint': ParameterValue(LaunchConfiguration('checkpoint'), value_type=str),
             'policy_type': ParameterValue(LaunchConfiguration('policy_type'), value_type=str),
             'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                            value_type=bool),
             'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool)},
        ])
    return LaunchDescription([*arguments, *discovery_range_environment(), policy])
